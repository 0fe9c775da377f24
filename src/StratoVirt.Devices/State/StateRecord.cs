namespace StratoVirt.Devices.State;

/// <summary>
/// One component's saved state: its name, the layout version and the bytes. <see cref="Capture"/> takes it from a
/// component, <see cref="Restore"/> gives it back to one after checking that the name and version are the
/// component's and that nothing is left over; <see cref="WriteTo"/> and <see cref="ReadFrom"/> put records one
/// after another into a larger record (a snapshot).
/// </summary>
public sealed record StateRecord(string Name, int Version, byte[] Data)
{
    public static StateRecord Capture(IStateful component)
    {
        var writer = new StateWriter();
        component.SaveState(writer);
        return new StateRecord(component.StateName, component.StateVersion, writer.ToArray());
    }

    public void Restore(IStateful component)
    {
        if (Name != component.StateName)
            throw new StateException($"a {Name} state record cannot restore {component.StateName}");
        if (Version != component.StateVersion)
            throw new StateException($"{Name} state version {Version} is not supported (this build reads version {component.StateVersion})");
        var reader = new StateReader(Data, Name);
        component.RestoreState(reader);
        reader.ExpectEnd();
    }

    public void WriteTo(StateWriter writer)
    {
        writer.WriteString(Name);
        writer.WriteUInt32((uint)Version);
        writer.WriteBytes(Data);
    }

    /// <summary>Reads a record written by <see cref="WriteTo"/>; its name goes into messages, so a name holding
    /// control characters (a line break would split the one-line error) is refused.</summary>
    public static StateRecord ReadFrom(StateReader reader)
    {
        string name = reader.ReadText("a record's name") ?? throw new StateException($"{reader.Name} state: a record without a name");
        return new StateRecord(name, (int)reader.ReadUInt32(), reader.ReadBytes());
    }
}
