package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
)

// The list pages the API reads (ListParticipantSummaries, ListEvents) outside a transaction go through a pool
// of their own: driver connections the store opens on the file itself, with the list statements prepared on
// each, read through driver.Rows. Against the raw ceiling (the same statement through database/sql's Stmt and
// Rows, docs/BENCHMARKS.md), database/sql costs a fifth of a page, profiled: per query a goroutine and a
// cancellable context watching the caller's context, another goroutine in the driver to interrupt SQLite, the
// Stmt's lookup of its connection's statement and the conversion of the arguments; per row a lock for Next,
// another for Scan, and Scan's conversion of every column. Here a page is the driver's own work.
//
// The caller's context bounds the wait for a connection and is checked every pageCheckRows rows, but is not
// handed to the driver: that would start the interrupting goroutine on every query, and database/sql would
// have discarded the connection an interrupt leaves behind. A page is a walk of an index in its order
// (TestListPlansUseIndexOrder), so the rows between two checks are a fraction of a millisecond.
//
// The pool owns its connections, so their statements are finalised before the connection is closed, which a
// statement cache keyed by database/sql's connections (sql.Conn.Raw) could not know when to do.

// pageCheckRows is how often a page read checks its caller's context.
const pageCheckRows = 64

var errStoreClosed = errors.New("sqlite: store is closed")

// pagePool is a fixed number of read-only connections, opened on first use.
type pagePool struct {
	open  func() (driver.Conn, error)
	conns chan *pageConn // the idle ones; a pageConn with a nil conn is not yet opened
	size  int
	done  chan struct{} // closed by close
	once  sync.Once
}

// pageConn is one connection of a pagePool and the statements prepared on it.
type pageConn struct {
	conn  driver.Conn
	stmts [numStmts]driver.Stmt
}

func newPagePool(size int, open func() (driver.Conn, error)) *pagePool {
	p := &pagePool{open: open, conns: make(chan *pageConn, size), size: size, done: make(chan struct{})}
	for range size {
		p.conns <- &pageConn{}
	}
	return p
}

func (p *pagePool) get(ctx context.Context) (*pageConn, error) {
	select {
	case <-p.done:
		return nil, errStoreClosed
	default:
	}
	select {
	case c := <-p.conns:
		return c, nil
	default:
	}
	select {
	case c := <-p.conns:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		return nil, errStoreClosed
	}
}

func (p *pagePool) put(c *pageConn) { p.conns <- c }

// close waits for the connections in use and closes them all.
func (p *pagePool) close() error {
	var errs []error
	p.once.Do(func() {
		close(p.done)
		for range p.size {
			errs = append(errs, (<-p.conns).close())
		}
	})
	return errors.Join(errs...)
}

func (c *pageConn) close() error {
	var errs []error
	for i, st := range c.stmts {
		if st != nil {
			errs = append(errs, st.Close())
			c.stmts[i] = nil
		}
	}
	if c.conn != nil {
		errs = append(errs, c.conn.Close())
		c.conn = nil
	}
	return errors.Join(errs...)
}

// query runs statement id, opening the connection and preparing the statement first if needed.
func (c *pageConn) query(p *pagePool, id stmtID, args []driver.NamedValue) (driver.Rows, error) {
	var err error
	if c.conn == nil {
		if c.conn, err = p.open(); err != nil {
			return nil, err
		}
	}
	st := c.stmts[id]
	if st == nil {
		if st, err = c.conn.Prepare(stmtSQL[id]); err != nil {
			return nil, err
		}
		c.stmts[id] = st
	}
	return st.(driver.StmtQueryContext).QueryContext(context.Background(), args)
}

// failed drops the connection after an error if the driver says it is no longer usable, as database/sql
// would; the next read opens a new one.
func (c *pageConn) failed() {
	if v, ok := c.conn.(driver.Validator); ok && !v.IsValid() {
		_ = c.close()
	}
}

// listPage is list for the reads of the page pool: at most n rows (all when n < 0) of statement id.
func listPage[T any](ctx context.Context, p *pagePool, what string, n int, row rowScanner[T], id stmtID, args ...any) ([]T, error) {
	out, err := readPage(ctx, p, n, row, id, args)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list %s: %w", what, err)
	}
	return out, nil
}

func readPage[T any](ctx context.Context, p *pagePool, n int, row rowScanner[T], id stmtID, args []any) ([]T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a) // as database/sql converts them
		if err != nil {
			return nil, err
		}
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	c, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	defer p.put(c)
	rows, err := c.query(p, id, named)
	if err != nil {
		c.failed()
		return nil, err
	}
	vals := make([]driver.Value, row.columns())
	out := make([]T, 0, min(max(n, 0), 128))
	for n < 0 || len(out) < n {
		if len(out)%pageCheckRows == pageCheckRows-1 {
			if err = ctx.Err(); err != nil {
				break
			}
		}
		if err = rows.Next(vals); err != nil {
			if err == io.EOF {
				err = nil
			}
			break
		}
		var v T
		if v, err = row.value(vals); err != nil {
			break
		}
		out = append(out, v)
	}
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		c.failed()
		return nil, err
	}
	return out, nil
}
