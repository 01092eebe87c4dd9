using Migration.Actors.Source;
using Xunit;

namespace Migration.Actors.Tests.Source;

/// <summary>The source's credit: never beyond the destination's budget, fair between devices, strict about returns.</summary>
public sealed class DeviceCreditPoolTests
{
    [Fact]
    public void DeviceCreditPool_must_cap_one_device_at_its_share_of_the_budget()
    {
        // 1000 / 3 devices = 333 bytes each: three chunks of 100, not four.
        var pool = new DeviceCreditPool(budgetBytes: 1000, chunkSize: 100, devices: 3);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(pool.CanReserveChunk(0));
            pool.ReserveChunk(0);
        }

        Assert.False(pool.CanReserveChunk(0));
        Assert.Throws<InvalidOperationException>(() => pool.ReserveChunk(0));
        Assert.Equal(300, pool.InFlight(0));
        Assert.Equal(300, pool.InFlightBytes);
        Assert.True(pool.CanReserveChunk(1));

        // A short chunk frees the difference: 100 + 100 + 30 = 230, so one more chunk fits under 333.
        pool.Shrink(0, 30);
        Assert.Equal(230, pool.InFlight(0));
        Assert.True(pool.CanReserveChunk(0));
    }

    [Fact]
    public void DeviceCreditPool_must_share_the_budget_among_the_devices_still_streaming_but_never_exceed_it()
    {
        // 900 / 3 = 300 each. Device 2 ends (its last chunk read) with 100 still in flight: the two left get 450 each.
        var pool = new DeviceCreditPool(budgetBytes: 900, chunkSize: 100, devices: 3);
        pool.ReserveChunk(2);
        for (var i = 0; i < 3; i++)
        {
            pool.ReserveChunk(0);
        }

        Assert.False(pool.CanReserveChunk(0));
        pool.DeviceEnded(2);
        pool.DeviceEnded(2); // idempotent
        Assert.Equal(450, pool.PerDeviceCap);
        Assert.True(pool.CanReserveChunk(0));
        pool.ReserveChunk(0);
        Assert.False(pool.CanReserveChunk(0)); // 400 + 100 > 450

        // Device 1 ends too: device 0 may use the whole budget, less what the ended devices still hold uncredited.
        pool.DeviceEnded(1);
        Assert.Equal(900, pool.PerDeviceCap);
        for (var i = 0; i < 4; i++)
        {
            pool.ReserveChunk(0);
        }

        Assert.Equal(900, pool.InFlightBytes);
        Assert.False(pool.CanReserveChunk(0)); // the budget, summed over all devices, is full
        pool.Return(2, 100);
        Assert.True(pool.CanReserveChunk(0));
    }

    [Fact]
    public void DeviceCreditPool_must_let_devices_take_turns_when_the_budget_is_one_chunk()
    {
        // budget / devices (37) is below one chunk: the cap is one chunk, and the total only allows one at a time.
        var pool = new DeviceCreditPool(budgetBytes: 150, chunkSize: 100, devices: 4);
        pool.ReserveChunk(2);
        for (var d = 0; d < 4; d++)
        {
            Assert.False(pool.CanReserveChunk(d), $"device {d} may reserve with 100 of 150 bytes in flight");
        }

        pool.Shrink(2, 100);
        pool.Return(2, 100);
        Assert.Equal(0, pool.InFlightBytes);
        Assert.True(pool.CanReserveChunk(3));
    }

    [Fact]
    public void DeviceCreditPool_must_reject_a_credit_return_larger_than_in_flight()
    {
        var pool = new DeviceCreditPool(budgetBytes: 400, chunkSize: 100, devices: 2);
        pool.ReserveChunk(0);
        pool.Shrink(0, 60);
        pool.ReserveChunk(1);

        var e = Assert.Throws<InvalidOperationException>(() => pool.Return(0, 61));
        Assert.Contains("device 0", e.Message);
        Assert.Contains("61", e.Message);
        // The rejected return changed nothing; another device's credit cannot be returned on this one either.
        Assert.Equal(60, pool.InFlight(0));
        Assert.Equal(160, pool.InFlightBytes);
        Assert.Throws<InvalidOperationException>(() => pool.Return(0, 100));
        pool.Return(0, 60);
        pool.Return(1, 100);
        Assert.Equal(0, pool.InFlightBytes);
        Assert.Throws<InvalidOperationException>(() => pool.Return(1, 1));
    }

    [Fact]
    public void DeviceCreditPool_must_reject_a_chunk_longer_than_the_chunk_size_and_a_budget_below_one_chunk()
    {
        Assert.Throws<ArgumentException>(() => new DeviceCreditPool(budgetBytes: 99, chunkSize: 100, devices: 1));
        var pool = new DeviceCreditPool(budgetBytes: 100, chunkSize: 100, devices: 1);
        pool.ReserveChunk(0);
        Assert.Throws<InvalidOperationException>(() => pool.Shrink(0, 101));
        Assert.Equal(100, pool.InFlightBytes);
    }

    [Theory]
    [InlineData(1000, 100, 1, 1)]
    [InlineData(1000, 100, 3, 2)]
    [InlineData(250, 100, 2, 3)]
    [InlineData(100, 100, 4, 4)]
    public void DeviceCreditPool_never_allows_reserving_beyond_the_budget(long budget, int chunk, int devices, int seed)
    {
        var pool = new DeviceCreditPool(budget, chunk, devices);
        var cap = Math.Max(chunk, budget / devices);
        var reserved = new List<(int Device, long Bytes)>(); // chunks read, not yet credited (model of the destination)
        var model = new long[devices];
        var rng = new Random(seed);
        for (var step = 0; step < 5000; step++)
        {
            var d = rng.Next(devices);
            var expectCan = model.Sum() + chunk <= budget && model[d] + chunk <= cap;
            Assert.Equal(expectCan, pool.CanReserveChunk(d));
            if (expectCan && rng.Next(2) == 0)
            {
                pool.ReserveChunk(d);
                var actual = rng.Next(chunk + 1);
                pool.Shrink(d, actual);
                model[d] += actual;
                reserved.Add((d, actual));
            }
            else if (reserved.Count > 0)
            {
                var i = rng.Next(reserved.Count);
                pool.Return(reserved[i].Device, reserved[i].Bytes);
                model[reserved[i].Device] -= reserved[i].Bytes;
                reserved.RemoveAt(i);
            }

            Assert.InRange(pool.InFlightBytes, 0, budget);
            for (var k = 0; k < devices; k++)
            {
                Assert.Equal(model[k], pool.InFlight(k));
                Assert.InRange(pool.InFlight(k), 0, cap);
            }
        }
    }
}
