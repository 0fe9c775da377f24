using System.Text;

namespace StratoVirt.Sys;

/// <summary>Log levels as upstream's STRATOVIRT_LOG_LEVEL names them.</summary>
public enum LogLevel { Trace, Debug, Info, Warn, Error, Off }

/// <summary>
/// The process log: one line per message, written with write(2) to stderr or the -D file. Errors are
/// always shown on stderr; other levels only when -D is given.
/// </summary>
public static class Log
{
    private static int _fd = 2;
    private static LogLevel _level = LogLevel.Error;
    private static bool _enabled;
    private static readonly Lock Gate = new();

    public static LogLevel Level => _enabled ? _level : LogLevel.Off;

    /// <summary>Where log lines go: the -D file, or stderr.</summary>
    public static int Fd => _fd;

    /// <summary>Parses a STRATOVIRT_LOG_LEVEL value; null for an unknown name.</summary>
    public static LogLevel? ParseLevel(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "info" => LogLevel.Info,
        "warn" or "warning" => LogLevel.Warn,
        "error" => LogLevel.Error,
        "off" => LogLevel.Off,
        _ => null,
    };

    /// <summary>Enables logging at <paramref name="level"/> to <paramref name="fd"/> (the process keeps it open).</summary>
    public static void Enable(int fd, LogLevel level)
    {
        _fd = fd;
        _level = level;
        _enabled = true;
    }

    public static bool IsEnabled(LogLevel level) => _enabled && level >= _level;

    public static void Write(LogLevel level, string message)
    {
        if (!IsEnabled(level)) return;
        var now = DateTime.UtcNow;
        string line = $"{now:yyyy-MM-ddTHH:mm:ss.ffffff}Z {Name(level),-5} {message}\n";
        WriteRaw(_fd, line);
    }

    public static void Info(string message) => Write(LogLevel.Info, message);
    public static void Debug(string message) => Write(LogLevel.Debug, message);
    public static void Warn(string message) => Write(LogLevel.Warn, message);
    public static void Error(string message) => Write(LogLevel.Error, message);

    private static string Name(LogLevel level) => level switch
    {
        LogLevel.Trace => "TRACE", LogLevel.Debug => "DEBUG", LogLevel.Info => "INFO",
        LogLevel.Warn => "WARN", _ => "ERROR",
    };

    /// <summary>Writes text to an fd in full, retrying short writes; used for logs and fatal messages.</summary>
    public static void WriteRaw(int fd, string text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        Span<byte> buffer = max <= 1024 ? stackalloc byte[max] : new byte[max];
        int n = Encoding.UTF8.GetBytes(text, buffer);
        lock (Gate) WriteAll(fd, buffer[..n]);
    }

    /// <summary>Writes all bytes to an fd, retrying on EINTR and short writes; gives up silently on other errors.</summary>
    public static void WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            int n = FileIo.Write(fd, data);
            if (n == -Libc.EAGAIN) { Thread.Sleep(1); continue; }
            if (n < 0) return;
            data = data[n..];
        }
    }
}
