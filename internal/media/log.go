package media

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/pion/logging"
)

// pionLogs routes pion's logs into slog. pion reports routine teardown (a closed socket, a stream already
// closed) as warnings and errors; a peer vanishing is normal here, so they go in one level lower and the
// media plane logs what matters itself.
//
// pion asks for a few loggers per peer connection, by scope ("ice", "dtls", ...): one per scope serves
// all of them, where each With cost every connection a handler of its own (about 1 KB per subscription,
// docs/BENCHMARKS.md, memory per subscription).
type pionLogs struct {
	log    *slog.Logger
	scopes *sync.Map // scope → pionLogger
}

func newPionLogs(log *slog.Logger) pionLogs { return pionLogs{log: log, scopes: &sync.Map{}} }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	if l, ok := f.scopes.Load(scope); ok {
		return l.(pionLogger)
	}
	l, _ := f.scopes.LoadOrStore(scope, pionLogger{f.log.With("pion", scope)})
	return l.(pionLogger)
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) at(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg)
}

// atf formats only what is logged: pion's debug lines are many, and most are below the level.
func (l pionLogger) atf(level slog.Level, format string, args []any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) Trace(msg string)                  {}
func (l pionLogger) Tracef(format string, args ...any) {}
func (l pionLogger) Debug(msg string)                  { l.at(slog.LevelDebug-4, msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.atf(slog.LevelDebug-4, format, args) }
func (l pionLogger) Info(msg string)                   { l.at(slog.LevelDebug, msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.atf(slog.LevelDebug, format, args) }
func (l pionLogger) Warn(msg string)                   { l.at(slog.LevelDebug, msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.atf(slog.LevelDebug, format, args) }
func (l pionLogger) Error(msg string)                  { l.at(slog.LevelInfo, msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.atf(slog.LevelInfo, format, args) }

var _ logging.LoggerFactory = pionLogs{}
