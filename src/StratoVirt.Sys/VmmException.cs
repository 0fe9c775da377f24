namespace StratoVirt.Sys;

/// <summary>
/// The base of every error the user is told about: its message is the whole one-line error, printed after
/// "stratovirt: " (or "ozone: "). The executables catch this type alone; anything else is a defect.
/// </summary>
public abstract class VmmException(string message) : Exception(message);
