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
        // Zeroed, so the entry after the last string is the NULL terminator (and Dispose can run at any point).
        Pointer = (byte**)NativeMemory.AllocZeroed((nuint)(_count + 1), (nuint)sizeof(byte*));
        for (int i = 0; i < _count; i++) Pointer[i] = (byte*)Marshal.StringToCoTaskMemUTF8(items[i]);
    }

    public byte** Pointer { get; private set; }

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
