using System.Diagnostics;
using Migration.Host.Bench;
using Xunit;

namespace Migration.Host.Tests.Bench;

public sealed class PrivateMemoryTests
{
    private const string Status = "Name:\tdotnet\nVmRSS:\t  107372 kB\nRssAnon:\t   36836 kB\nRssFile:\t   54372 kB\nRssShmem:\t   16164 kB\n";

    [Fact]
    public void Reads_the_kB_value_of_a_status_line()
    {
        Assert.Equal(36836, PrivateMemory.Kilobytes(Status, "RssAnon:"));
        Assert.Equal(16164, PrivateMemory.Kilobytes(Status, "RssShmem:"));
    }

    [Theory]
    [InlineData("RssAnon:\t 12 MB\n")]
    [InlineData("RssAnon:\t kB\n")]
    [InlineData("RssAnon:\t -5 kB\n")]
    [InlineData("VmRSS:\t 5 kB\n")]
    public void A_missing_or_malformed_line_reads_as_null(string status) =>
        Assert.Null(PrivateMemory.Kilobytes(status, "RssAnon:"));

    [Fact]
    public void This_process_private_memory_is_resident_and_below_its_working_set_with_mapped_files()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        using var self = Process.GetCurrentProcess();
        var privateBytes = PrivateMemory.Of(self.Id);
        self.Refresh();
        Assert.NotNull(privateBytes);
        Assert.InRange(privateBytes!.Value, 1L << 20, self.WorkingSet64);
    }

    [Fact]
    public void A_process_that_does_not_exist_has_none() => Assert.Null(PrivateMemory.Of(int.MaxValue));
}
