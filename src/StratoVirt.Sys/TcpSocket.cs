using System.Net;
using System.Net.Sockets;

namespace StratoVirt.Sys;

/// <summary>
/// Non-blocking TCP listeners (QMP's <c>tcp:&lt;ip&gt;:&lt;port&gt;</c>). Connections are accepted, read and
/// written with <see cref="UnixSocket.Accept"/>, <see cref="UnixSocket.Receive"/> and <see cref="UnixSocket.Send"/>,
/// which work on any stream socket.
/// </summary>
public static unsafe class TcpSocket
{
    /// <summary>Binds and listens on <paramref name="address"/>:<paramref name="port"/> (IPv4 or IPv6, port 0
    /// picks a free one) with SO_REUSEADDR, so a restarted VMM can take its port back from TIME_WAIT.</summary>
    /// <exception cref="SysException">The port is in use (EADDRINUSE), the address is not this host's
    /// (EADDRNOTAVAIL), or a call failed; the message names the address.</exception>
    public static FileDescriptor Listen(IPAddress address, int port, int backlog = 8)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, ushort.MaxValue);
        string where = new IPEndPoint(address, port).ToString();
        bool v6 = address.AddressFamily == AddressFamily.InterNetworkV6;
        int family = v6 ? Libc.AF_INET6 : Libc.AF_INET;
        var sock = new FileDescriptor(SysException.Check(
            Libc.Socket(family, Libc.SOCK_STREAM | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0), $"socket for tcp {where}"));
        try
        {
            int one = 1;
            // one is a local int that setsockopt only reads.
            SysException.Check(Libc.SetSockOpt(sock.Fd, Libc.SOL_SOCKET, Libc.SO_REUSEADDR, &one, sizeof(int)),
                $"setsockopt SO_REUSEADDR for tcp {where}");
            ushort networkPort = (ushort)IPAddress.HostToNetworkOrder((short)port);
            int result;
            if (v6)
            {
                var addr = new SockAddrIn6 { Family = Libc.AF_INET6, Port = networkPort, ScopeId = (uint)address.ScopeId };
                // Address is a 16-byte inline buffer of this local (an IPv6 address is 16 bytes); bind only reads addr.
                address.TryWriteBytes(new Span<byte>(addr.Address, 16), out _);
                result = Libc.Bind(sock.Fd, &addr, (uint)sizeof(SockAddrIn6));
            }
            else
            {
                var addr = new SockAddrIn { Family = Libc.AF_INET, Port = networkPort };
                // Address is a 4-byte inline buffer of this local (an IPv4 address is 4 bytes); bind only reads addr.
                address.TryWriteBytes(new Span<byte>(addr.Address, 4), out _);
                result = Libc.Bind(sock.Fd, &addr, (uint)sizeof(SockAddrIn));
            }
            SysException.Check(result, $"bind tcp {where}");
            SysException.Check(Libc.Listen(sock.Fd, backlog), $"listen tcp {where}");
            return sock;
        }
        catch
        {
            sock.Dispose();
            throw;
        }
    }

    /// <summary>The port a listener is bound to (after binding port 0).</summary>
    public static int LocalPort(FileDescriptor listener)
    {
        SockAddrIn6 addr; // large enough for either family; both keep the port at offset 2
        uint length = (uint)sizeof(SockAddrIn6);
        // addr and length are locals that getsockname fills within length bytes.
        SysException.Check(Libc.GetSockName(listener.Fd, &addr, &length), "getsockname");
        return (ushort)IPAddress.NetworkToHostOrder((short)addr.Port);
    }
}
