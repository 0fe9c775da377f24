using System.Text;
using StratoVirt.Cli;
using StratoVirt.Sys;

namespace StratoVirt.Fuzz;

/// <summary>
/// The command line: the input, cut at NUL bytes into arguments as argv arrives, goes through the option parser and
/// the building of the configuration (every -device, -drive, -netdev, -chardev, -machine, ... value). A usage
/// error (a VmmException, the one line the executable prints) is the documented rejection; nothing else may escape.
/// </summary>
public sealed class CommandLineTarget : IFuzzTarget
{
    public void Run(ReadOnlySpan<byte> input)
    {
        string[] args = Encoding.UTF8.GetString(input).Split('\0');
        try
        {
            var parsed = ArgParser.Parse(args, Options.Specs);
            Options.FromArgs(parsed, hostMemory: 16UL << 30);
        }
        catch (VmmException)
        {
        }
    }
}
