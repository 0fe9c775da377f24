using System.Buffers.Binary;
using StratoVirt.Sys;

namespace StratoVirt.Virtio.VhostUser;

/// <summary>A vhost-user backend that cannot be reached, or that broke the protocol; the message names what it did.</summary>
public sealed class VhostUserException(string message) : VmmException(message);

/// <summary>The frontend's requests of the vhost-user protocol that this VMM sends (QEMU's docs/interop/vhost-user.rst).</summary>
public enum VhostUserRequest : uint
{
    GetFeatures = 1,
    SetFeatures = 2,
    SetOwner = 3,
    SetMemTable = 5,
    SetVringNum = 8,
    SetVringAddr = 9,
    SetVringBase = 10,
    GetVringBase = 11,
    SetVringKick = 12,
    SetVringCall = 13,
    SetVringErr = 14,
    GetProtocolFeatures = 15,
    SetProtocolFeatures = 16,
    GetQueueNum = 17,
    SetVringEnable = 18,
    GetConfig = 24,
}

/// <summary>Feature bits that belong to vhost-user itself, not to the virtio device.</summary>
public static class VhostUserFeature
{
    /// <summary>VHOST_USER_F_PROTOCOL_FEATURES: the backend has protocol features; its rings start disabled.</summary>
    public const ulong ProtocolFeatures = 1UL << 30;

    /// <summary>VHOST_F_LOG_ALL: dirty logging for migration, which this VMM does not do.</summary>
    public const ulong LogAll = 1UL << 26;
}

/// <summary>The protocol features this frontend uses.</summary>
public static class VhostUserProtocolFeature
{
    /// <summary>The backend says how many queues it has (GET_QUEUE_NUM).</summary>
    public const ulong MultiQueue = 1UL << 0;

    /// <summary>Requests without a reply of their own can ask for an acknowledgement (NEED_REPLY).</summary>
    public const ulong ReplyAck = 1UL << 3;

    /// <summary>The backend holds the device's configuration space (GET_CONFIG).</summary>
    public const ulong Config = 1UL << 9;

    public const ulong Supported = MultiQueue | ReplyAck | Config;
}

/// <summary>One region of the memory table: guest physical range, where this VMM maps it, and the fd and offset the
/// backend maps it from.</summary>
public readonly record struct VhostUserMemoryRegion(ulong GuestAddress, ulong Size, ulong UserAddress, int Fd, ulong FdOffset);

/// <summary>
/// Frames of the vhost-user protocol: a 12-byte header (request, flags, payload size; all little-endian) and the
/// payload. Requests are written into a caller's buffer; replies are checked strictly (version, the reply flag, the
/// request they answer, the payload size each reply must have), so a backend that breaks the protocol is named as
/// such and never read past its frame.
/// </summary>
public static class VhostUserCodec
{
    public const int HeaderSize = 12;

    /// <summary>The largest payload accepted or sent: a full memory table (8 + 8 x 32) and a configuration space
    /// (12 + 256) both fit.</summary>
    public const int MaxPayload = 512;

    /// <summary>The regions one SET_MEM_TABLE carries (VHOST_MEMORY_BASELINE_NREGIONS).</summary>
    public const int MaxRegions = 8;

    /// <summary>The longest configuration space GET_CONFIG asks for.</summary>
    public const int MaxConfig = 256;

    public const uint FlagVersion1 = 0x1, FlagReply = 0x4, FlagNeedReply = 0x8;
    private const uint VersionMask = 0x3;

    /// <summary>Bit 8 of a kick or call request: no fd comes with it.</summary>
    public const ulong NoFdFlag = 1UL << 8;

    public const int VringStateSize = 8, VringAddressSize = 40, ConfigHeaderSize = 12;

    /// <summary>Writes a request header; returns the frame length.</summary>
    public static int WriteHeader(Span<byte> frame, VhostUserRequest request, int payloadSize, bool needReply = false)
    {
        if (payloadSize is < 0 or > MaxPayload) throw new ArgumentOutOfRangeException(nameof(payloadSize));
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)request);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], FlagVersion1 | (needReply ? FlagNeedReply : 0));
        BinaryPrimitives.WriteUInt32LittleEndian(frame[8..], (uint)payloadSize);
        return HeaderSize + payloadSize;
    }

    /// <summary>A u64 payload (features, a kick or call index with its flags); returns its size.</summary>
    public static int WriteU64(Span<byte> payload, ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(payload, value);
        return 8;
    }

    /// <summary>A vring state (index and number: a size, a base, an enable flag); returns its size.</summary>
    public static int WriteVringState(Span<byte> payload, uint index, uint number)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(payload, index);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], number);
        return VringStateSize;
    }

    /// <summary>A vring address: the three areas as addresses in the frontend's address space; returns its size.</summary>
    public static int WriteVringAddress(Span<byte> payload, uint index, ulong descriptors, ulong used, ulong available)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(payload, index);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], 0); // flags: no dirty log
        BinaryPrimitives.WriteUInt64LittleEndian(payload[8..], descriptors);
        BinaryPrimitives.WriteUInt64LittleEndian(payload[16..], used);
        BinaryPrimitives.WriteUInt64LittleEndian(payload[24..], available);
        BinaryPrimitives.WriteUInt64LittleEndian(payload[32..], 0); // log address
        return VringAddressSize;
    }

    /// <summary>A memory table (count, padding, then guest address, size, user address and mmap offset per region);
    /// the fds go with the message in the same order. Returns its size.</summary>
    public static int WriteMemoryTable(Span<byte> payload, ReadOnlySpan<VhostUserMemoryRegion> regions)
    {
        if (regions.IsEmpty || regions.Length > MaxRegions)
            throw new ArgumentException($"a memory table has 1 to {MaxRegions} regions, not {regions.Length}");
        BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)regions.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], 0);
        int at = 8;
        foreach (var r in regions)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(payload[at..], r.GuestAddress);
            BinaryPrimitives.WriteUInt64LittleEndian(payload[(at + 8)..], r.Size);
            BinaryPrimitives.WriteUInt64LittleEndian(payload[(at + 16)..], r.UserAddress);
            BinaryPrimitives.WriteUInt64LittleEndian(payload[(at + 24)..], r.FdOffset);
            at += 32;
        }
        return at;
    }

    /// <summary>A GET_CONFIG request: offset, size, flags, then <paramref name="size"/> zero bytes the backend fills.</summary>
    public static int WriteConfigRequest(Span<byte> payload, uint offset, int size)
    {
        if (size is <= 0 or > MaxConfig) throw new ArgumentOutOfRangeException(nameof(size));
        BinaryPrimitives.WriteUInt32LittleEndian(payload, offset);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], (uint)size);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[8..], 0);
        payload.Slice(ConfigHeaderSize, size).Clear();
        return ConfigHeaderSize + size;
    }

    /// <summary>Checks a reply's header against the request it must answer; returns its payload size.</summary>
    public static int ReadReplyHeader(ReadOnlySpan<byte> header, VhostUserRequest expected)
    {
        uint request = BinaryPrimitives.ReadUInt32LittleEndian(header);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        if ((flags & VersionMask) != FlagVersion1)
            throw new VhostUserException($"the backend answered {Name(expected)} with protocol version {flags & VersionMask}; only version 1 exists");
        if ((flags & FlagReply) == 0)
            throw new VhostUserException($"the backend sent a message without the reply flag while {Name(expected)} waited for its reply");
        if (request != (uint)expected)
            throw new VhostUserException($"the backend answered {Name(expected)} with a reply to request {request}");
        if (size > MaxPayload)
            throw new VhostUserException($"the backend's reply to {Name(expected)} claims {size} payload bytes; at most {MaxPayload} are accepted");
        return (int)size;
    }

    /// <summary>A u64 reply (features, queue count, a REPLY_ACK status).</summary>
    public static ulong ReadU64(ReadOnlySpan<byte> payload, VhostUserRequest request)
    {
        ExpectSize(payload, 8, request);
        return BinaryPrimitives.ReadUInt64LittleEndian(payload);
    }

    /// <summary>A vring state reply (GET_VRING_BASE), which must name the queue asked about; returns its number.</summary>
    public static uint ReadVringState(ReadOnlySpan<byte> payload, uint index, VhostUserRequest request)
    {
        ExpectSize(payload, VringStateSize, request);
        uint got = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        if (got != index) throw new VhostUserException($"the backend answered {Name(request)} for queue {index} about queue {got}");
        return BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
    }

    /// <summary>A GET_CONFIG reply: the same offset and size as asked, then the bytes; returns them.</summary>
    public static ReadOnlySpan<byte> ReadConfig(ReadOnlySpan<byte> payload, uint offset, int size)
    {
        if (payload.Length == 0)
            throw new VhostUserException("the backend refused GET_CONFIG (an empty reply)");
        ExpectSize(payload, ConfigHeaderSize + size, VhostUserRequest.GetConfig);
        uint gotOffset = BinaryPrimitives.ReadUInt32LittleEndian(payload);
        uint gotSize = BinaryPrimitives.ReadUInt32LittleEndian(payload[4..]);
        if (gotOffset != offset || gotSize != size)
            throw new VhostUserException($"the backend answered GET_CONFIG of {size} bytes at {offset} with {gotSize} bytes at {gotOffset}");
        return payload.Slice(ConfigHeaderSize, size);
    }

    private static void ExpectSize(ReadOnlySpan<byte> payload, int size, VhostUserRequest request)
    {
        if (payload.Length != size)
            throw new VhostUserException($"the backend's reply to {Name(request)} has {payload.Length} payload bytes; it must have {size}");
    }

    /// <summary>The request's name as the specification spells it, for messages.</summary>
    public static string Name(VhostUserRequest request) => request switch
    {
        VhostUserRequest.GetFeatures => "GET_FEATURES",
        VhostUserRequest.SetFeatures => "SET_FEATURES",
        VhostUserRequest.SetOwner => "SET_OWNER",
        VhostUserRequest.SetMemTable => "SET_MEM_TABLE",
        VhostUserRequest.SetVringNum => "SET_VRING_NUM",
        VhostUserRequest.SetVringAddr => "SET_VRING_ADDR",
        VhostUserRequest.SetVringBase => "SET_VRING_BASE",
        VhostUserRequest.GetVringBase => "GET_VRING_BASE",
        VhostUserRequest.SetVringKick => "SET_VRING_KICK",
        VhostUserRequest.SetVringCall => "SET_VRING_CALL",
        VhostUserRequest.SetVringErr => "SET_VRING_ERR",
        VhostUserRequest.GetProtocolFeatures => "GET_PROTOCOL_FEATURES",
        VhostUserRequest.SetProtocolFeatures => "SET_PROTOCOL_FEATURES",
        VhostUserRequest.GetQueueNum => "GET_QUEUE_NUM",
        VhostUserRequest.SetVringEnable => "SET_VRING_ENABLE",
        VhostUserRequest.GetConfig => "GET_CONFIG",
        _ => $"request {(uint)request}",
    };
}
