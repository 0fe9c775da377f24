using System.Runtime.InteropServices;

namespace StratoVirt.Sys;

/// <summary>A NULL-terminated array of NUL-terminated UTF-8 strings in native memory (argv, envp for posix_spawn
/// and execve); valid until Dispose.</summary>
internal sealed unsafe class NativeStringArray : IDisposable
{
    private readonly int _count;

    public NativeStringArray(IReadOnlyList<string> items)
    {
        _count = items.Count;
        // _count + 1 zeroed entries: the strings fill the first _count, the last stays the NULL terminator.
        Pointer = (byte**)NativeMemory.AllocZeroed((nuint)(_count + 1), (nuint)sizeof(byte*));
        for (int i = 0; i < _count; i++) Pointer[i] = (byte*)Marshal.StringToCoTaskMemUTF8(items[i]);
    }

    public byte** Pointer { get; private set; }

    /// <summary>One string; the index is checked against the count, so the read stays inside the array.</summary>
    public byte* this[int index] => (uint)index < (uint)_count ? Pointer[index] : throw new ArgumentOutOfRangeException(nameof(index));

    public void Dispose()
    {
        if (Pointer == null) return;
        // Each entry is null or a string from StringToCoTaskMemUTF8; the array itself came from NativeMemory.
        for (int i = 0; i < _count; i++) Marshal.FreeCoTaskMem((nint)Pointer[i]);
        NativeMemory.Free(Pointer);
        Pointer = null;
    }
}
