package queue

import (
	"fmt"
	"log/slog"
)

// AsynqLogger routes asynq's logs (asynq.Config.Logger) into l. Fatal logs at
// error level and does not exit: the owner of the server decides.
type AsynqLogger struct{ L *slog.Logger }

// Debug logs at debug level.
func (a AsynqLogger) Debug(args ...any) { a.L.Debug(fmt.Sprint(args...)) }

// Info logs at info level.
func (a AsynqLogger) Info(args ...any) { a.L.Info(fmt.Sprint(args...)) }

// Warn logs at warn level.
func (a AsynqLogger) Warn(args ...any) { a.L.Warn(fmt.Sprint(args...)) }

// Error logs at error level.
func (a AsynqLogger) Error(args ...any) { a.L.Error(fmt.Sprint(args...)) }

// Fatal logs at error level.
func (a AsynqLogger) Fatal(args ...any) { a.L.Error(fmt.Sprint(args...)) }
