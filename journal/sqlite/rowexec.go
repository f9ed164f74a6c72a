package sqlite

/*
#include <stdint.h>
#include <string.h>

// The SQLite C API, as compiled into this binary by github.com/mattn/go-sqlite3.
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
extern int sqlite3_bind_int64(sqlite3_stmt*, int, long long);
extern int sqlite3_bind_text(sqlite3_stmt*, int, const char*, int, void(*)(void*));
extern int sqlite3_bind_blob(sqlite3_stmt*, int, const void*, int, void(*)(void*));
extern int sqlite3_bind_null(sqlite3_stmt*, int);
extern int sqlite3_step(sqlite3_stmt*);
extern int sqlite3_reset(sqlite3_stmt*);
extern sqlite3 *sqlite3_db_handle(sqlite3_stmt*);
extern int sqlite3_changes(sqlite3*);
extern const char *sqlite3_errmsg(sqlite3*);

extern int sqlite3_config(int, ...);

// domo_memstatus_off turns off SQLite's memory statistics (cgo cannot call
// the variadic sqlite3_config itself).
static int domo_memstatus_off(void) { return sqlite3_config(9, 0); } // 9: SQLITE_CONFIG_MEMSTATUS

enum { kindNull, kindInt, kindText, kindBlob };

// domo_exec_row binds n values and steps s once, in one call from Go:
// binding them one cgo call each was a third of a journal row's cost.
// Value i is kinds[i]; an int is ints[i]; text and blobs are lens[i]
// bytes of buf from offs[i], copied by SQLite (SQLITE_TRANSIENT). It
// returns SQLite's result code of the step (101, SQLITE_DONE, when it
// ran) and the rows it changed; errmsg receives SQLite's message (up to
// 255 bytes) on failure.
static int domo_exec_row(sqlite3_stmt *s, int n, const unsigned char *kinds, const long long *ints,
                         const char *buf, const int *offs, const int *lens, long long *changes, char *errmsg) {
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		switch (kinds[i]) {
		case kindNull: rc = sqlite3_bind_null(s, i + 1); break;
		case kindInt:  rc = sqlite3_bind_int64(s, i + 1, ints[i]); break;
		case kindText: rc = sqlite3_bind_text(s, i + 1, buf + offs[i], lens[i], (void(*)(void*))-1); break;
		case kindBlob: rc = sqlite3_bind_blob(s, i + 1, buf + offs[i], lens[i], (void(*)(void*))-1); break;
		}
	}
	if (rc == 0) {
		rc = sqlite3_step(s);
	}
	sqlite3 *db = sqlite3_db_handle(s);
	*changes = rc == 101 ? sqlite3_changes(db) : 0;
	if (rc != 101) {
		strncpy(errmsg, sqlite3_errmsg(db), 255);
		errmsg[255] = 0;
	}
	sqlite3_reset(s);
	return rc;
}
*/
import "C"

import (
	"database/sql/driver"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// memstatusOff turns off SQLite's memory statistics, once, before the
// first journal opens (see Open).
var memstatusOff = sync.OnceFunc(func() { C.domo_memstatus_off() })

// stmtHandleOff is where *sqlite3.SQLiteStmt keeps its sqlite3_stmt pointer,
// found by reflection once; ok is false if the driver's layout is not the
// one this code knows, and rows are then written through the driver.
var stmtHandleOff, stmtHandleOK = func() (off uintptr, ok bool) {
	f, found := reflect.TypeFor[sqlite3.SQLiteStmt]().FieldByName("s")
	if !found || f.Type.Kind() != reflect.Pointer || f.Type.Elem().Name() != "_Ctype_struct_sqlite3_stmt" {
		return 0, false
	}
	return f.Offset, true
}()

// rawStmt returns st's sqlite3_stmt, or nil if it cannot be had.
func rawStmt(st driver.Stmt) unsafe.Pointer {
	s, ok := st.(*sqlite3.SQLiteStmt)
	if !ok || !stmtHandleOK || s == nil {
		return nil
	}
	return *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(s), stmtHandleOff))
}

// rowArgs is the reusable argument block of execRow.
type rowArgs struct {
	kinds []C.uchar
	ints  []C.longlong
	offs  []C.int
	lens  []C.int
	buf   []byte
	msg   [256]C.char
}

// reset empties a for the values of the next row.
func (a *rowArgs) reset() {
	a.kinds, a.ints = a.kinds[:0], a.ints[:0]
	a.offs, a.lens = a.offs[:0], a.lens[:0]
	if a.buf == nil {
		a.buf = make([]byte, 0, 512) // never nil: SQLite binds a nil text as NULL
	}
	a.buf = a.buf[:0]
}

func (a *rowArgs) add(kind C.uchar, i int64, size int) {
	a.kinds = append(a.kinds, kind)
	a.ints = append(a.ints, C.longlong(i))
	a.offs = append(a.offs, C.int(len(a.buf)-size))
	a.lens = append(a.lens, C.int(size))
}

// Int, Text and Blob make a sqlstore.ValueSink of a.
func (a *rowArgs) Int(v int64) { a.add(C.kindInt, v, 0) }
func (a *rowArgs) Text(v string) {
	a.buf = append(a.buf, v...)
	a.add(C.kindText, 0, len(v))
}
func (a *rowArgs) Blob(v []byte) {
	if v == nil {
		a.add(C.kindNull, 0, 0)
		return
	}
	a.buf = append(a.buf, v...)
	a.add(C.kindBlob, 0, len(v))
}

// execRow runs a prepared statement once with the values in a, in one cgo
// call, and returns the rows it changed.
func (a *rowArgs) execRow(s unsafe.Pointer) (int64, error) {
	n := len(a.kinds)
	if n == 0 {
		return 0, fmt.Errorf("journal/sqlite: no values")
	}
	var changes C.longlong
	rc := C.domo_exec_row((*C.sqlite3_stmt)(s), C.int(n), &a.kinds[0], &a.ints[0],
		(*C.char)(unsafe.Pointer(unsafe.SliceData(a.buf))), &a.offs[0], &a.lens[0], &changes, &a.msg[0])
	if rc != 101 {
		return 0, fmt.Errorf("journal/sqlite: %s (%d)", C.GoString(&a.msg[0]), int(rc))
	}
	return int64(changes), nil
}
