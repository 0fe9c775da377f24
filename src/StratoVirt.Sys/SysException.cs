using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>A failed system call: what was attempted and the errno text.</summary>
public sealed class SysException : VmmException
{
    public int Errno { get; }

    public SysException(string operation, int errno)
        : base($"{operation}: {Libc.ErrorText(errno)} (errno {errno})") => Errno = errno;

    /// <summary>Builds the exception from the errno of the last P/Invoke.</summary>
    public static SysException Last(string operation) => new(operation, Marshal.GetLastPInvokeError());

    public static int Check(int result, string operation) => result < 0 ? throw Last(operation) : result;
}
