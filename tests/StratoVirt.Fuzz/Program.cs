using SharpFuzz;
using StratoVirt.Fuzz;

// StratoVirt.Fuzz <target>                under afl-fuzz: SharpFuzz's persistent loop feeds the target
// StratoVirt.Fuzz <target> <file>...      runs the target once on each file (reproduces a finding; use the build
//                                         that is not instrumented, instrumented code runs only under Fuzzer.Run)
// StratoVirt.Fuzz --list                  the targets' names
if (args.Length == 1 && args[0] == "--list")
{
    foreach (var name in FuzzTargets.Names) Console.WriteLine(name);
    return 0;
}
if (args.Length == 0 || !FuzzTargets.Names.Contains(args[0]))
{
    Console.Error.WriteLine($"usage: StratoVirt.Fuzz <target> [input...]; targets: {string.Join(", ", FuzzTargets.Names)}");
    return 2;
}
IFuzzTarget? target = null;
if (args.Length > 1)
{
    FuzzTargets.TryGet(args[0], out target);
    foreach (string path in args[1..]) target!.Run(File.ReadAllBytes(path));
    return 0;
}
var buffer = new byte[FuzzTargets.MaxInput];
Fuzzer.Run(stream =>
{
    // Created on the first input: the target's constructor already runs instrumented product code.
    if (target is null) FuzzTargets.TryGet(args[0], out target);
    int n = 0, read;
    while (n < buffer.Length && (read = stream.Read(buffer, n, buffer.Length - n)) > 0) n += read;
    target!.Run(buffer.AsSpan(0, n));
});
return 0;
