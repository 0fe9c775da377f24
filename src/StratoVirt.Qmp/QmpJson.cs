using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace StratoVirt.Qmp;

/// <summary>A QMP payload that writes itself. Replies and events are written with <see cref="Utf8JsonWriter"/>
/// alone: System.Text.Json's serializer would add its metadata for every payload type to the data the runtime
/// rehydrates at every start.</summary>
public interface IQmpValue
{
    void WriteTo(Utf8JsonWriter w);
}

/// <summary>Writing QMP values as text.</summary>
public static class QmpJson
{
    /// <summary>Quotes and non-ASCII stay readable in replies (QMP clients and lab scripts grep them); the
    /// default encoder would write ' as \u0027.</summary>
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void WriteArray<T>(Utf8JsonWriter w, T[] items) where T : IQmpValue
    {
        w.WriteStartArray();
        foreach (var item in items) item.WriteTo(w);
        w.WriteEndArray();
    }

    public static void WriteArray<T>(Utf8JsonWriter w, string name, T[] items) where T : IQmpValue
    {
        w.WritePropertyName(name);
        WriteArray(w, items);
    }

    public static void WriteObject(Utf8JsonWriter w, string name, IQmpValue value)
    {
        w.WritePropertyName(name);
        value.WriteTo(w);
    }

    /// <summary>What <paramref name="write"/> writes, on one line, newline-terminated when asked.</summary>
    public static byte[] ToUtf8(Action<Utf8JsonWriter> write, bool newline = false)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
            write(w);
        return newline ? [.. buffer.WrittenSpan, (byte)'\n'] : buffer.WrittenSpan.ToArray();
    }
}

/// <summary>The QEMU version QMP clients are shown (Kata's govmm wants major 5 or later).</summary>
public sealed record QemuVersion(int Micro, int Minor, int Major) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("micro", Micro);
        w.WriteNumber("minor", Minor);
        w.WriteNumber("major", Major);
        w.WriteEndObject();
    }
}

public sealed record QmpVersion(QemuVersion Qemu, string Package) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        QmpJson.WriteObject(w, "qemu", Qemu);
        w.WriteString("package", Package);
        w.WriteEndObject();
    }
}

public sealed record QmpStatus(bool Running, bool Singlestep, string Status) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteBoolean("running", Running);
        w.WriteBoolean("singlestep", Singlestep);
        w.WriteString("status", Status);
        w.WriteEndObject();
    }
}

/// <summary>The <c>query-balloon</c> return and the BALLOON_CHANGED event data.</summary>
public sealed record BalloonInfo(ulong Actual) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("actual", Actual);
        w.WriteEndObject();
    }
}

/// <summary>BLOCK_IO_ERROR's data, in QEMU's shape (upstream StratoVirt has no such event): the device, "read" or
/// "write", the action taken ("report": the guest got the error, the VM runs on), whether the disk was full, and the
/// host's error text.</summary>
public sealed record BlockIoErrorEventData(string Device, string Operation, string Action, bool Nospace, string Reason) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("device", Device);
        w.WriteString("operation", Operation);
        w.WriteString("action", Action);
        w.WriteBoolean("nospace", Nospace);
        w.WriteString("reason", Reason);
        w.WriteEndObject();
    }
}

/// <summary>DEVICE_BACKEND_DISCONNECTED's data: the device whose vhost-user backend closed its socket (the device now
/// needs a reset), the chardev it named and the socket's path.</summary>
public sealed record BackendDisconnectedEventData(string Device, string Chardev, string Socket) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("device", Device);
        w.WriteString("chardev", Chardev);
        w.WriteString("socket", Socket);
        w.WriteEndObject();
    }
}

/// <summary>DEVICE_DELETED's data: upstream StratoVirt reports the id as the path too.</summary>
public sealed record DeviceDeletedEventData(string Device, string Path) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("device", Device);
        w.WriteString("path", Path);
        w.WriteEndObject();
    }
}

public sealed record ShutdownEventData(bool Guest, string Reason) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteBoolean("guest", Guest);
        w.WriteString("reason", Reason);
        w.WriteEndObject();
    }
}

/// <summary>An empty object: the return of commands that return nothing.</summary>
public sealed record QmpEmpty : IQmpValue
{
    public static readonly QmpEmpty Value = new();

    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteEndObject();
    }
}

/// <summary>A name: the entries of query-commands and query-events.</summary>
public sealed record QmpNamed(string Name) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("name", Name);
        w.WriteEndObject();
    }
}

public sealed record QmpCpuProps(int CoreId, int SocketId, int ThreadId) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("core-id", CoreId);
        w.WriteNumber("socket-id", SocketId);
        w.WriteNumber("thread-id", ThreadId);
        w.WriteEndObject();
    }
}

/// <summary>One <c>query-cpus</c> entry, with upstream's field names.</summary>
public sealed record QmpCpuInfo(int Cpu, bool Current, bool Halted, string QomPath, int ThreadId, QmpCpuProps Props) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteNumber("CPU", Cpu);
        w.WriteBoolean("current", Current);
        w.WriteBoolean("halted", Halted);
        w.WriteString("qom_path", QomPath);
        w.WriteNumber("thread_id", ThreadId);
        QmpJson.WriteObject(w, "props", Props);
        w.WriteEndObject();
    }
}

/// <summary>One <c>query-hotpluggable-cpus</c> entry, in QEMU's shape.</summary>
public sealed record QmpHotpluggableCpu(string Type, int VcpusCount, QmpCpuProps Props, string QomPath) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("type", Type);
        w.WriteNumber("vcpus-count", VcpusCount);
        QmpJson.WriteObject(w, "props", Props);
        w.WriteString("qom-path", QomPath);
        w.WriteEndObject();
    }
}

/// <summary>A property name and type, for <c>device-list-properties</c>.</summary>
public sealed record QmpProperty(string Name, string Type) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("name", Name);
        w.WriteString("type", Type);
        w.WriteEndObject();
    }
}

public sealed record QmpTarget(string Arch) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("arch", Arch);
        w.WriteEndObject();
    }
}

public sealed record QmpKvm(bool Enabled, bool Present) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteBoolean("enabled", Enabled);
        w.WriteBoolean("present", Present);
        w.WriteEndObject();
    }
}

public sealed record QmpMachine(string Name, int CpuMax, bool HotpluggableCpus, bool IsDefault) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("name", Name);
        w.WriteNumber("cpu-max", CpuMax);
        w.WriteBoolean("hotpluggable-cpus", HotpluggableCpus);
        w.WriteBoolean("is-default", IsDefault);
        w.WriteEndObject();
    }
}

public sealed record QmpErrorBody(string Class, string Desc) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("class", Class);
        w.WriteString("desc", Desc);
        w.WriteEndObject();
    }
}

/// <summary>query-migrate's return: the status, and QEMU's error-desc for a failure.</summary>
public sealed record QmpMigrationInfo(string Status, string? ErrorDesc) : IQmpValue
{
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("status", Status);
        if (ErrorDesc is not null) w.WriteString("error-desc", ErrorDesc);
        w.WriteEndObject();
    }
}
