using StratoVirt.Boot;
using StratoVirt.Memory;
using StratoVirt.Sys;
using StratoVirt.Tests;

namespace StratoVirt.Fuzz;

/// <summary>
/// The kernel loaders: the input, given the format's magic (the bzImage setup header's "HdrS", or the ELF
/// identification) so that every run reaches that format's parser, is recognised, validated and loaded with an
/// initrd and a command line into 64 MiB of guest memory. A BootException (a VmmException naming the file and the
/// problem) is the documented rejection; nothing else may escape.
/// </summary>
public sealed class KernelTarget(KernelTarget.Kind kind) : IFuzzTarget, IDisposable
{
    public enum Kind { BzImage, Elf }

    private const int HeaderMagic = 0x202;
    private readonly TempDir _dir = new();
    private readonly GuestMemory _memory = new([(0UL, 64UL << 20)]);
    private byte[] _file = [];

    public void Run(ReadOnlySpan<byte> input)
    {
        int length = kind == Kind.BzImage ? Math.Max(input.Length, HeaderMagic + 4) : Math.Max(input.Length, 4);
        if (_file.Length != length) _file = new byte[length];
        _file.AsSpan().Clear();
        input.CopyTo(_file);
        if (kind == Kind.BzImage) "HdrS"u8.CopyTo(_file.AsSpan(HeaderMagic));
        else "\x7fELF"u8.CopyTo(_file);
        string kernel = _dir.Write("kernel", _file);
        string initrd = Path.Combine(_dir.Path, "initrd");
        if (!File.Exists(initrd)) _dir.Write("initrd", new byte[4096]);
        try
        {
            var image = KernelImage.Open(kernel);
            BootLoader.Load(_memory, new BootSpec(image, initrd, "console=ttyS0 reboot=k panic=1"));
        }
        catch (VmmException)
        {
        }
    }

    public void Dispose()
    {
        _memory.Dispose();
        _dir.Dispose();
    }
}
