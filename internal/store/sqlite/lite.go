package sqlite

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// liteConn is one read-only connection of the list pages' pool (pages.go), made through SQLite's C API as
// modernc.org/sqlite/lib exposes it, one level below modernc's database/sql driver (the same SQLite, the
// same file, the same statements).
//
// Why: the driver opens every connection SQLITE_OPEN_FULLMUTEX (hard-coded), so each sqlite3_column_* call
// takes and releases the connection's recursive mutex, and its Rows.Next asks every column's type, then its
// value, then (for text) its length: about sixteen mutex round trips a row of a participant summary. Profiled
// (docs/BENCHMARKS.md, "Fourth pass"), those mutexes were about half of a ListParticipants page's store read,
// and boxing every column into a driver.Value most of its allocations. A page connection is only ever used by
// the one goroutine holding it from the pool, which is what SQLITE_OPEN_NOMUTEX asks of its caller
// (https://sqlite.org/threadsafe.html, "multi-thread" mode), and the page statements' columns are NOT NULL
// and typed by the schema, so a row is read with one call per column and no boxing.
//
// Memory: the C strings handed to SQLite are allocated in libc's heap (modernc.org/libc, outside Go's) and
// freed here; text read back is copied into Go memory before the statement steps again.
type liteConn struct {
	tls   *libc.TLS
	db    uintptr
	stmts [numStmts]uintptr // prepared on first use, finalised by close
	// bound holds the text arguments bound to the statement being read (SQLITE_STATIC: SQLite reads them
	// in place), freed when the statement is reset.
	bound []uintptr
	// symbols interns the values of columns with few distinct values (a state, an event name), so that a
	// page does not allocate one string per row for them.
	symbols map[string]string
}

// maxSymbols bounds liteConn.symbols: past it, symbol copies like text.
const maxSymbols = 256

// openLite opens the database at uri (a file: URI, as dsn makes) for reading only: query_only, with the
// store's busy timeout.
func openLite(uri string, busyTimeout time.Duration) (_ *liteConn, err error) {
	c := &liteConn{tls: libc.NewTLS(), symbols: map[string]string{}}
	defer func() {
		if err != nil {
			_ = c.close() // sqlite3_open_v2 may leave a handle to close even when it fails
		}
	}()
	name, err := libc.CString(uri)
	if err != nil {
		return nil, err
	}
	defer libc.Xfree(c.tls, name) // before the close above: deferred calls run last first
	db, rc := c.outPointer(func(out uintptr) int32 {
		return sqlite3.Xsqlite3_open_v2(c.tls, name, out, sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_URI|sqlite3.SQLITE_OPEN_NOMUTEX, 0)
	})
	c.db = db
	if rc != sqlite3.SQLITE_OK {
		return nil, fmt.Errorf("open: %w", c.err(rc))
	}
	if rc := sqlite3.Xsqlite3_busy_timeout(c.tls, c.db, int32(busyTimeout.Milliseconds())); rc != sqlite3.SQLITE_OK {
		return nil, c.err(rc)
	}
	// query_only, as the store's other readers (dsn): a statement of this pool can never write.
	if err := c.run("PRAGMA query_only = 1"); err != nil {
		return nil, err
	}
	return c, nil
}

// outPointer calls fn with a pointer-sized out parameter in libc memory and returns what fn wrote there
// with fn's result code.
func (c *liteConn) outPointer(fn func(out uintptr) int32) (uintptr, int32) {
	const size = int(unsafe.Sizeof(uintptr(0)))
	out := c.tls.Alloc(size)
	defer c.tls.Free(size)
	rc := fn(out)
	return *(*uintptr)(unsafe.Pointer(unsafe.SliceData(libc.GoBytes(out, size)))), rc
}

// err is the error SQLite reports for result code rc.
func (c *liteConn) err(rc int32) error {
	msg := libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	if c.db != 0 {
		if m := libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db)); m != "" && m != msg {
			msg += ": " + m
		}
	}
	return &liteError{code: rc, msg: msg}
}

// liteError is an SQLite error: its result code and message.
type liteError struct {
	code int32
	msg  string
}

func (e *liteError) Error() string { return fmt.Sprintf("%s (%d)", e.msg, e.code) }

// prepare compiles sql, which must be one statement.
func (c *liteConn) prepare(sql string) (uintptr, error) {
	text, err := libc.CString(sql)
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, text)
	st, rc := c.outPointer(func(out uintptr) int32 {
		return sqlite3.Xsqlite3_prepare_v3(c.tls, c.db, text, -1, sqlite3.SQLITE_PREPARE_PERSISTENT, out, 0)
	})
	if rc != sqlite3.SQLITE_OK {
		return 0, c.err(rc)
	}
	if st == 0 {
		return 0, fmt.Errorf("sqlite: no statement in %q", sql)
	}
	return st, nil
}

// run runs a statement that returns no rows to read.
func (c *liteConn) run(sql string) error {
	st, err := c.prepare(sql)
	if err != nil {
		return err
	}
	defer sqlite3.Xsqlite3_finalize(c.tls, st)
	for {
		switch rc := sqlite3.Xsqlite3_step(c.tls, st); rc {
		case sqlite3.SQLITE_ROW:
		case sqlite3.SQLITE_DONE:
			return nil
		default:
			return c.err(rc)
		}
	}
}

// statement is statement id, prepared on its first use.
func (c *liteConn) statement(id stmtID) (uintptr, error) {
	if st := c.stmts[id]; st != 0 {
		return st, nil
	}
	st, err := c.prepare(stmtSQL[id])
	if err != nil {
		return 0, err
	}
	c.stmts[id] = st
	return st, nil
}

// query binds args to statement id and returns it ready to step. The caller reads its rows and resets it.
func (c *liteConn) query(id stmtID, args []any) (liteRows, error) {
	st, err := c.statement(id)
	if err != nil {
		return liteRows{}, err
	}
	r := liteRows{c: c, st: st}
	for i, a := range args {
		if err := c.bind(st, int32(i+1), a); err != nil {
			r.reset()
			return liteRows{}, err
		}
	}
	return r, nil
}

// bind binds a to parameter i: the argument types the store's queries take.
func (c *liteConn) bind(st uintptr, i int32, a any) error {
	var rc int32
	switch v := a.(type) {
	case string:
		p, err := libc.CString(v)
		if err != nil {
			return err
		}
		c.bound = append(c.bound, p)
		rc = sqlite3.Xsqlite3_bind_text(c.tls, st, i, p, int32(len(v)), 0) // SQLITE_STATIC: freed by reset
	case int64:
		rc = sqlite3.Xsqlite3_bind_int64(c.tls, st, i, v)
	case int:
		rc = sqlite3.Xsqlite3_bind_int64(c.tls, st, i, int64(v))
	case bool:
		var n int64
		if v {
			n = 1
		}
		rc = sqlite3.Xsqlite3_bind_int64(c.tls, st, i, n)
	default:
		return fmt.Errorf("sqlite: cannot bind %T", a)
	}
	if rc != sqlite3.SQLITE_OK {
		return c.err(rc)
	}
	return nil
}

// close finalises the statements and closes the connection.
func (c *liteConn) close() error {
	var errs []error
	for i, st := range c.stmts {
		if st != 0 {
			sqlite3.Xsqlite3_finalize(c.tls, st) // its result is the last step's, already reported
			c.stmts[i] = 0
		}
	}
	if c.db != 0 {
		if rc := sqlite3.Xsqlite3_close_v2(c.tls, c.db); rc != sqlite3.SQLITE_OK {
			errs = append(errs, c.err(rc))
		}
		c.db = 0
	}
	if c.tls != nil {
		c.tls.Close()
		c.tls = nil
	}
	return errors.Join(errs...)
}

// liteRows steps one statement of a liteConn and reads its current row (columnReader).
type liteRows struct {
	c  *liteConn
	st uintptr
}

// next steps to the next row: false at the end or on an error.
func (r liteRows) next() (bool, error) {
	switch rc := sqlite3.Xsqlite3_step(r.c.tls, r.st); rc {
	case sqlite3.SQLITE_ROW:
		return true, nil
	case sqlite3.SQLITE_DONE:
		return false, nil
	default:
		return false, r.c.err(rc)
	}
}

// reset ends the read: the statement can run again, and the text bound to it is freed.
func (r liteRows) reset() {
	// reset's result repeats the last step's error, already reported by next.
	sqlite3.Xsqlite3_reset(r.c.tls, r.st)
	sqlite3.Xsqlite3_clear_bindings(r.c.tls, r.st)
	for _, p := range r.c.bound {
		libc.Xfree(r.c.tls, p)
	}
	r.c.bound = r.c.bound[:0]
}

// bytes is column i of the current row as SQLite holds it, valid until the statement steps again.
func (r liteRows) bytes(i int) []byte {
	p := sqlite3.Xsqlite3_column_text(r.c.tls, r.st, int32(i))
	n := sqlite3.Xsqlite3_column_bytes(r.c.tls, r.st, int32(i))
	if p == 0 || n <= 0 {
		return nil
	}
	return libc.GoBytes(p, int(n))
}

func (r liteRows) text(i int, _ string) (string, error) { return string(r.bytes(i)), nil }

func (r liteRows) symbol(i int, _ string) (string, error) {
	b := r.bytes(i)
	if s, ok := r.c.symbols[string(b)]; ok { // the conversion in a map index does not allocate
		return s, nil
	}
	s := string(b)
	if len(r.c.symbols) < maxSymbols {
		r.c.symbols[s] = s
	}
	return s, nil
}

func (r liteRows) integer(i int, _ string) (int64, error) {
	return sqlite3.Xsqlite3_column_int64(r.c.tls, r.st, int32(i)), nil
}
