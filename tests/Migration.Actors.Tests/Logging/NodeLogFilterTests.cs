using Akka.Event;
using Migration.Actors.Logging;
using Migration.Actors.Node;
using Xunit;

namespace Migration.Actors.Tests.Logging;

public sealed class NodeLogFilterTests
{
    private const string Writer = "akka://mig/system/endpointManager/reliableEndpointWriter-akka.tcp%3A%2F%2Fcli%40127.0.0.1%3A44003-2/endpointWriter";

    /// <summary>Akka.Remote's own exception (internal there), as EndpointWriter throws it on a disassociation.</summary>
    private static Exception Disassociated()
    {
        var type = typeof(Akka.Remote.RemoteActorRefProvider).Assembly.GetType("Akka.Remote.EndpointDisassociatedException", throwOnError: true)!;
        var ctor = type.GetConstructors(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic)
            .OrderBy(c => c.GetParameters().Length).First();
        var args = ctor.GetParameters().Select(p => p.ParameterType == typeof(string) ? (object?)"Disassociated" : null).ToArray();
        return (Exception)ctor.Invoke(args);
    }

    [Fact]
    public void The_Disassociated_error_of_an_ordinary_disconnect_is_dropped()
    {
        var e = new Error(Disassociated(), Writer, typeof(Akka.Remote.RemoteActorRefProvider), "Disassociated");
        Assert.Null(NodeLogFilter.Filter(e, showAll: false));
    }

    [Fact]
    public void The_gating_warning_of_an_ordinary_disconnect_becomes_one_info_line_naming_the_remote_system()
    {
        var e = new Warning(Writer, typeof(Akka.Remote.RemoteActorRefProvider),
            "Association with remote system akka.tcp://cli@127.0.0.1:44003 has failed; address is now gated for 500 ms. Reason is: [Akka.Remote.EndpointDisassociatedException: Disassociated\n   at ...]");
        var kept = Assert.IsType<Info>(NodeLogFilter.Filter(e, showAll: false));
        Assert.Equal("remote system akka.tcp://cli@127.0.0.1:44003 disconnected", kept.Message);
    }

    [Fact]
    public void Other_warnings_and_errors_pass_unchanged()
    {
        var oversized = new Error(new InvalidOperationException("Discarding oversized payload"), Writer, typeof(Akka.Remote.RemoteActorRefProvider), "oversized");
        var gatedForOtherReason = new Warning(Writer, typeof(Akka.Remote.RemoteActorRefProvider),
            "Association with remote system akka.tcp://mig@127.0.0.1:4053 has failed; address is now gated for 500 ms. Reason is: [Akka.Remote.InvalidAssociation: handshake refused]");
        Assert.Same(oversized, NodeLogFilter.Filter(oversized, showAll: false));
        Assert.Same(gatedForOtherReason, NodeLogFilter.Filter(gatedForOtherReason, showAll: false));
    }

    [Fact]
    public void Info_lines_pass_only_from_our_classes_unless_everything_is_shown()
    {
        var ours = new Info("akka://mig/user/node", typeof(HypervisorNode), "migration started");
        var akka = new Info("akka://mig/system/cluster", typeof(Akka.Cluster.Cluster), "Leader is moving node to [Up]");
        Assert.Same(ours, NodeLogFilter.Filter(ours, showAll: false));
        Assert.Null(NodeLogFilter.Filter(akka, showAll: false));
        Assert.Same(akka, NodeLogFilter.Filter(akka, showAll: true));
    }

    [Fact]
    public void A_json_line_is_one_object_with_the_documented_fields()
    {
        var line = NodeLogger.JsonLine(new Warning("akka://mig/user/node", typeof(HypervisorNode), "a \"quoted\"\nline"));
        Assert.DoesNotContain('\n', line);
        using var doc = System.Text.Json.JsonDocument.Parse(line);
        var root = doc.RootElement;
        Assert.Equal("WARNING", root.GetProperty("level").GetString());
        Assert.Equal("a \"quoted\"\nline", root.GetProperty("message").GetString());
        Assert.Equal(typeof(HypervisorNode).FullName, root.GetProperty("class").GetString());
        Assert.Equal("akka://mig/user/node", root.GetProperty("source").GetString());
        Assert.True(root.TryGetProperty("time", out _));
    }
}
