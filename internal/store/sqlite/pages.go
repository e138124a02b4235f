package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// The list pages the API reads (ListParticipantSummaries, ListEvents) outside a transaction go through a pool
// of their own: connections the store opens on the file itself below database/sql and below modernc's driver
// (lite.go), with the list statements prepared on each. Against the raw ceiling (the same statement through
// database/sql's Stmt and Rows, docs/BENCHMARKS.md), database/sql cost a fifth of a page, profiled: per query a
// goroutine and a cancellable context watching the caller's context, another goroutine in the driver to
// interrupt SQLite, the Stmt's lookup of its connection's statement and the conversion of the arguments; per
// row a lock for Next, another for Scan, and Scan's conversion of every column; the driver itself, half of
// what was left (lite.go says why).
//
// The caller's context bounds the wait for a connection and is checked every pageCheckRows rows, but does not
// interrupt SQLite: that takes a goroutine per query watching the context. A page is a walk of an index in its
// order (TestListPlansUseIndexOrder), so the rows between two checks are a fraction of a millisecond.
//
// The pool owns its connections, so their statements are finalised before the connection is closed, which a
// statement cache keyed by database/sql's connections (sql.Conn.Raw) could not know when to do.

// pageCheckRows is how often a page read checks its caller's context.
const pageCheckRows = 64

var errStoreClosed = errors.New("sqlite: store is closed")

// pagePool is a fixed number of read-only connections, opened on first use.
type pagePool struct {
	open  func() (*liteConn, error)
	conns chan *pageConn // the idle ones; a pageConn with a nil conn is not yet opened
	size  int
	done  chan struct{} // closed by close
	once  sync.Once
}

// pageConn is one connection of a pagePool.
type pageConn struct {
	conn *liteConn
}

func newPagePool(size int, open func() (*liteConn, error)) *pagePool {
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
	if c.conn == nil {
		return nil
	}
	err := c.conn.close()
	c.conn = nil
	return err
}

// query runs statement id, opening the connection first if needed.
func (c *pageConn) query(p *pagePool, id stmtID, args []any) (liteRows, error) {
	if c.conn == nil {
		conn, err := p.open()
		if err != nil {
			return liteRows{}, err
		}
		c.conn = conn
	}
	return c.conn.query(id, args)
}

// failed drops the connection after an SQLite error, whatever it was (a busy file, I/O, a full disk): the
// next read opens a new one, which costs little beside an error.
func (c *pageConn) failed() { _ = c.close() }

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
	c, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	defer p.put(c)
	rows, err := c.query(p, id, args)
	if err != nil {
		c.failed()
		return nil, err
	}
	done, sqliteErr := false, false
	defer func() {
		// Also on a panic while reading (the caller's recover, net/http's): a statement left stepping would
		// keep its read snapshot on a pooled connection, stale pages and a WAL that cannot checkpoint past it.
		rows.reset()
		if !done || sqliteErr {
			c.failed()
		}
	}()
	var cols columnReader = rows // boxed once a page, not once a row
	out := make([]T, 0, min(max(n, 0), 128))
	for n < 0 || len(out) < n {
		if len(out)%pageCheckRows == pageCheckRows-1 {
			if err = ctx.Err(); err != nil {
				break
			}
		}
		var more bool
		if more, err = rows.next(); !more {
			sqliteErr = err != nil
			break
		}
		var v T
		if v, err = row.value(cols); err != nil {
			break
		}
		out = append(out, v)
	}
	done = true
	if err != nil {
		return nil, err
	}
	return out, nil
}
