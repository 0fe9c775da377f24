using StratoVirt.Sys;

namespace Ozone;

/// <summary>The ozone executable: upstream's sandbox launcher for stratovirt.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == Sandbox.StageArgument) return Sandbox.Run(args);
        if (OzoneOptions.WantsHelp(args))
        {
            Log.WriteRaw(1, OzoneOptions.Usage);
            return 0;
        }
        try
        {
            return Launcher.Run(OzoneOptions.Parse(args), args);
        }
        catch (VmmException e)
        {
            Log.WriteRaw(2, $"ozone: {e.Message.ReplaceLineEndings(" ")}\n");
            return 1;
        }
        catch (Exception e)
        {
            // A defect, not a user error: still one line and a failure status.
            Log.WriteRaw(2, $"ozone: internal error: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}\n");
            return 1;
        }
    }
}
