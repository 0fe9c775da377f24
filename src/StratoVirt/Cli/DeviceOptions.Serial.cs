using StratoVirt.Devices.Chardev;
using StratoVirt.Devices.Options;
using StratoVirt.Virtio.Devices.Console;

namespace StratoVirt.Cli;

/// <summary>-serial, upstream's forms: the serial port's chardev.</summary>
internal sealed partial class DeviceOptions
{
    /// <summary>The id upstream gives the chardev of an inline -serial backend.</summary>
    public const string SerialChardevId = "serial_chardev";

    /// <summary>The serial port's chardev, or null without -serial.</summary>
    public ChardevConfig? Serial { get; private set; }

    /// <summary>
    /// -serial chardev:&lt;id&gt; takes a -chardev, which then serves the port alone (no virtconsole, no -mon);
    /// stdio, pty, file,path=&lt;f&gt; and socket,path=&lt;p&gt;,server,nowait make a chardev of its own. Parsed
    /// after -mon and -device, whose use of chardevs it checks.
    /// </summary>
    private void AddSerial(string text)
    {
        if (text.StartsWith("chardev:", StringComparison.Ordinal))
        {
            string id = text["chardev:".Length..];
            if (_tcpChardevs.ContainsKey(id))
                throw new UsageException($"option -serial: chardev '{id}': TCP chardevs serve only -mon in this build; use path=");
            if (!_chardevs.TryGetValue(id, out var chardev))
                throw new UsageException($"option -serial: no -chardev with id '{id}'");
            if (id == _monitorChardev) throw new UsageException($"option -serial: chardev '{id}' is used by the -mon monitor");
            if (_used.Contains($"-chardev/{id}")) throw new UsageException($"option -serial: chardev '{id}' is used by a device");
            Serial = chardev;
        }
        else
        {
            var v = new OptionValue("-serial", text, "backend", ["backend", .. ChardevParameters]);
            if (IsTcpSocket(v)) throw new UsageException("option -serial: TCP sockets serve only -mon in this build; use path=");
            Serial = ParseChardev(v, "-serial", SerialChardevId);
        }
        if (Serial is ChardevConfig.Stdio
            && _devices.Find(d => d is ConsoleDeviceConfig { Chardev: ChardevConfig.Stdio }) is ConsoleDeviceConfig console)
            throw new UsageException($"option -serial: stdio is already the console of virtconsole '{console.Id}'");
    }
}
