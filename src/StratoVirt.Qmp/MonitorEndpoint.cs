using System.Globalization;
using System.Net;

namespace StratoVirt.Qmp;

/// <summary>Where a QMP monitor listens: a unix socket path or a TCP address (from -qmp, or -mon with a socket
/// -chardev).</summary>
public abstract record MonitorEndpoint
{
    /// <summary>A unix socket, created mode 0600 and removed at exit.</summary>
    public sealed record Unix(string Path) : MonitorEndpoint
    {
        public override string ToString() => $"unix:{Path}";
    }

    /// <summary>A TCP listener; port 0 asks the kernel for a free port.</summary>
    public sealed record Tcp(IPAddress Address, int Port) : MonitorEndpoint
    {
        public override string ToString() => $"tcp:{new IPEndPoint(Address, Port)}";
    }

    /// <summary>Parses upstream's <c>-qmp unix:&lt;path&gt;,server,nowait</c> or
    /// <c>-qmp tcp:&lt;ip&gt;:&lt;port&gt;,server,nowait</c>.</summary>
    /// <exception cref="FormatException">One line naming what is wrong.</exception>
    public static MonitorEndpoint ParseQmp(string value)
    {
        string[] parts = value.Split(',');
        bool server = false, nowait = false;
        foreach (string p in parts.AsSpan(1))
        {
            if (p == "server") server = true;
            else if (p == "nowait") nowait = true;
            else throw new FormatException($"unknown parameter '{p}' in '{value}'");
        }
        MonitorEndpoint endpoint;
        if (parts[0].StartsWith("unix:", StringComparison.Ordinal))
        {
            string path = parts[0]["unix:".Length..];
            if (path.Length == 0) throw new FormatException($"the socket path is empty in '{value}'");
            endpoint = new Unix(path);
        }
        else if (parts[0].StartsWith("tcp:", StringComparison.Ordinal))
        {
            endpoint = ParseTcp(parts[0]["tcp:".Length..]);
        }
        else
        {
            throw new FormatException($"'{value}' is neither unix:<path> nor tcp:<ip>:<port>");
        }
        if (!server || !nowait) throw new FormatException($"'server' and 'nowait' are required in '{value}'");
        return endpoint;
    }

    /// <summary><c>&lt;ip&gt;:&lt;port&gt;</c>; an IPv6 address may be written in brackets.</summary>
    public static Tcp ParseTcp(string hostPort)
    {
        int colon = hostPort.LastIndexOf(':');
        if (colon < 0) throw new FormatException($"'{hostPort}' is not <ip>:<port>");
        return ParseTcp(hostPort[..colon], hostPort[(colon + 1)..]);
    }

    /// <summary>A TCP endpoint from an IP address (not a host name) and a port 0-65535.</summary>
    public static Tcp ParseTcp(string host, string port)
    {
        string bare = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        // IPAddress also takes short IPv4 forms ("10.1", "7"); a monitor address must be written out in full.
        bool fullForm = bare.Contains(':') || bare.AsSpan().Count('.') == 3;
        if (!fullForm || !IPAddress.TryParse(bare, out var address))
            throw new FormatException($"invalid host '{host}' for a tcp socket (an IPv4 or IPv6 address)");
        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int number) || number > ushort.MaxValue)
            throw new FormatException($"invalid port '{port}' for a tcp socket (0-65535)");
        return new Tcp(address, number);
    }
}
