using Migration.Devices.Ram;

namespace Migration.Devices.Workload;

/// <summary>Result of <see cref="WorkloadPatternChecker.Check"/>.</summary>
/// <param name="Ok">True when the image is consistent.</param>
/// <param name="BadPages">Pages that broke the pattern.</param>
/// <param name="PagesChecked">Pages walked (all pages of all blocks).</param>
/// <param name="Message">Names the first bad page, or summarises a good image.</param>
public sealed record WorkloadCheckResult(bool Ok, long BadPages, long PagesChecked, string Message);

/// <summary>
/// QEMU's check_guests_ram invariant (tests/qtest/migration-test.c) for images written by <see cref="GuestWorkload"/>:
/// walking byte 0 of each page in order across the blocks, the value is constant except for at most ONE step
/// where the next value is exactly one less (mod 256) than the previous one: the point the in-progress pass
/// had reached when the guest stopped. Anything else (a second step, a jump, a page too high) means a page
/// was lost or torn in migration. Assumes byte 0 of every page started equal. Reads only; no locking: call it
/// while the workload is paused or gone.
/// </summary>
public static unsafe class WorkloadPatternChecker
{
    public static WorkloadCheckResult Check(IReadOnlyList<RamBlock> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (blocks.Count == 0)
            throw new ArgumentException("no RAM blocks to check", nameof(blocks));

        long checkedPages = 0, bad = 0;
        string? firstBad = null;
        bool hitEdge = false;
        string edge = "";
        byte first = *blocks[0].BasePointer;
        byte last = first;
        foreach (RamBlock block in blocks)
        {
            byte* basePtr = block.BasePointer;
            for (long page = 0; page < block.PageCount; page++)
            {
                byte b = basePtr[page << RamBlock.PageShift];
                checkedPages++;
                if (checkedPages > 1 && b != last)
                {
                    if ((byte)(b + 1) == last && !hitEdge)
                    {
                        hitEdge = true;
                        edge = $"page {page} of {block.Name}";
                    }
                    else
                    {
                        bad++;
                        firstBad ??= hitEdge
                            ? $"page {page} of {block.Name}: byte {b} after {last}, expected {last} (the one step down was at {edge})"
                            : $"page {page} of {block.Name}: byte {b} after {last}, expected {last} or {(byte)(last - 1)}";
                    }
                }
                last = b;
            }
        }
        if (bad > 0)
            return new WorkloadCheckResult(false, bad, checkedPages, $"{bad} inconsistent page(s); first: {firstBad}");
        string summary = hitEdge
            ? $"{checkedPages} pages consistent: {first} up to {edge}, then {last}"
            : $"{checkedPages} pages consistent: all {first}";
        return new WorkloadCheckResult(true, 0, checkedPages, summary);
    }
}
