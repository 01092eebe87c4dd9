namespace Migration.Devices.Util;

/// <summary>A lock-free "raise to at least": for frontiers and peaks that several threads push up.</summary>
public static class AtomicMax
{
    /// <summary>Sets <paramref name="target"/> to <paramref name="value"/> if that is larger; safe from any number of threads.</summary>
    public static void Raise(ref long target, long value)
    {
        var seen = Volatile.Read(ref target);
        while (value > seen)
        {
            var was = Interlocked.CompareExchange(ref target, value, seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }
}
