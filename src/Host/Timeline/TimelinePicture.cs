using System.Globalization;
using System.Text;
using Migration.Actors.Messages;
using ScottPlot;

namespace Migration.Host.Timeline;

/// <summary>
/// Draws a migration's timeline (ScottPlot) as one SVG of three stacked panels sharing the time axis: throughput of RAM
/// and device state (MiB/s), remaining dirty RAM (MiB), device buffer held vs budget (MiB). Every panel shades the
/// downtime window (labelled "downtime" in the first) and marks iteration starts (the setup before the first one is shaded grey); reconnects and throttle steps are
/// marked when they happened (the throttle percent then gets its own axis in the first panel).
/// </summary>
public static class TimelinePicture
{
    public const int Width = 1400;
    private const int PanelHeight = 300;
    private const int TitleHeight = 62;
    private const string Font = "DejaVu Sans";
    private static readonly Color Ram = new("#1f77b4");
    private static readonly Color Device = new("#d62728");
    private static readonly Color Dirty = new("#2ca02c");
    private static readonly Color Buffer = new("#9467bd");
    private static readonly Color DowntimeShade = new Color("#ff7f0e").WithAlpha(0.25);

    /// <summary>The SVG document of the report's timeline.</summary>
    public static string Render(MigrationReport report) => Render(TimelineSeries.From(report));

    public static string Render(TimelineSeries s)
    {
        if (s.TimeS.Length < 2)
        {
            throw new ArgumentException($"a timeline needs at least 2 samples, the report has {s.TimeS.Length}");
        }

        var xMax = s.TimeS[^1];
        var panels = new[]
        {
            Panel(s, xMax, "throughput (MiB/s)", p =>
            {
                Line(p, s.TimeS, s.RamMiBps, Ram, "RAM");
                Line(p, s.TimeS, s.DeviceMiBps, Device, "device state");
                if (s.ThrottleSteps.Length > 0 || s.ThrottlePercent.Any(t => t > 0))
                {
                    var throttle = Line(p, s.TimeS, s.ThrottlePercent, Colors.Gray, "throttle (%)");
                    throttle.ConnectStyle = ConnectStyle.StepHorizontal;
                    throttle.Axes.YAxis = p.Axes.Right;
                    p.Axes.Right.Label.Text = "throttle (% of guest CPU)";
                    p.Axes.Right.Min = 0;
                    p.Axes.Right.Max = 100;
                }
            }, labelDowntime: true),
            Panel(s, xMax, "remaining dirty RAM (MiB)", p => Line(p, s.TimeS, s.RemainingDirtyMiB, Dirty, "dirty RAM not yet sent"), labelDowntime: false),
            Panel(s, xMax, "device buffer (MiB)", p =>
            {
                Line(p, s.TimeS, s.DeviceBufferMiB, Buffer, "held by the destination");
                var budget = Line(p, s.TimeS, s.DeviceBudgetMiB, Colors.Black, "budget");
                budget.LinePattern = LinePattern.Dashed;
            }, labelDowntime: false, xLabel: "time since the migration started (s)"),
        };

        var svg = new StringBuilder();
        var height = TitleHeight + panels.Length * PanelHeight;
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{height}\" viewBox=\"0 0 {Width} {height}\">");
        svg.Append(CultureInfo.InvariantCulture, $"<rect width=\"{Width}\" height=\"{height}\" fill=\"white\"/>");
        svg.Append(CultureInfo.InvariantCulture,
            $"<text x=\"{Width / 2}\" y=\"25\" text-anchor=\"middle\" font-family=\"{Font}, Arial, sans-serif\" font-size=\"17\" font-weight=\"bold\">{Escape(s.Title)}</text>");
        svg.Append(CultureInfo.InvariantCulture,
            $"<text x=\"{Width / 2}\" y=\"50\" text-anchor=\"middle\" font-family=\"{Font}, Arial, sans-serif\" font-size=\"14\">{Escape(s.Subtitle)}</text>");
        for (var i = 0; i < panels.Length; i++)
        {
            var inner = panels[i].GetSvgXml(Width, PanelHeight);
            svg.Append(CultureInfo.InvariantCulture, $"<g transform=\"translate(0,{TitleHeight + i * PanelHeight})\">").Append(StripXmlDeclaration(inner)).Append("</g>");
        }

        svg.Append("</svg>");
        return svg.ToString();
    }

    public static void Save(MigrationReport report, string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null)
        {
            Directory.CreateDirectory(dir);
        }

        File.WriteAllText(path, Render(report));
    }

    private static Plot Panel(TimelineSeries s, double xMax, string yLabel, Action<Plot> draw, bool labelDowntime, string? xLabel = null)
    {
        var p = new Plot();
        p.Font.Set(Font);
        // The same margins in every panel, so their time axes line up (room on the right for the throttle axis).
        p.Layout.Fixed(new PixelPadding(90, 90, xLabel is null ? 30 : 55, 22));
        p.YLabel(yLabel);
        if (xLabel is not null)
        {
            p.XLabel(xLabel);
        }

        // Before the first iteration: the destination allocates the guest and the channels connect; nothing moves yet.
        if (s.Iterations.Length > 0 && s.Iterations[0].TimeS > 0)
        {
            var setup = p.Add.HorizontalSpan(0, s.Iterations[0].TimeS);
            setup.FillStyle.Color = Colors.Gray.WithAlpha(0.12);
            setup.LineStyle.Width = 0;
            if (labelDowntime)
            {
                setup.LegendText = "setup (prepare, connect)";
            }
        }

        if (s.Downtime is { } d)
        {
            var span = p.Add.HorizontalSpan(d.StartS, Math.Max(d.EndS, d.StartS + xMax / 500));
            span.FillStyle.Color = DowntimeShade;
            span.LineStyle.Width = 0;
            if (labelDowntime)
            {
                span.LegendText = $"downtime {1000 * (d.EndS - d.StartS):0} ms";
            }
        }

        // Iteration labels at least 3% of the width apart, so short iterations do not print over each other.
        var lastLabel = double.NegativeInfinity;
        foreach (var (t, n) in s.Iterations)
        {
            var line = p.Add.VerticalLine(t, 1, Colors.Gray.WithAlpha(0.6), LinePattern.Dotted);
            if (labelDowntime && t - lastLabel >= xMax * 0.03)
            {
                lastLabel = t;
                line.Text = $"it {n}";
                line.LabelOppositeAxis = true;
                line.LabelFontSize = 11;
                line.LabelBackgroundColor = Colors.Transparent;
                line.LabelFontColor = Colors.DimGray;
            }
        }

        foreach (var (t, channel) in s.Reconnects)
        {
            var line = p.Add.VerticalLine(t, 2, Colors.Magenta, LinePattern.Dashed);
            if (labelDowntime)
            {
                line.Text = $"reconnect ch {channel}";
                line.LabelFontSize = 11;
            }
        }

        foreach (var (t, percent) in s.ThrottleSteps)
        {
            var line = p.Add.VerticalLine(t, 1, Colors.Gray, LinePattern.Dashed);
            if (labelDowntime)
            {
                line.Text = $"throttle {percent}%";
                line.LabelFontSize = 11;
            }
        }

        draw(p);
        p.Axes.AutoScale();
        p.Axes.SetLimitsX(0, xMax);
        var yMax = Math.Max(1, p.Axes.GetLimits().Top);
        p.Axes.SetLimitsY(0, yMax * 1.08);
        if (labelDowntime && s.Downtime is { } dt)
        {
            var text = p.Add.Text("downtime", (dt.StartS + dt.EndS) / 2, yMax);
            text.LabelFontSize = 13;
            text.LabelBold = true;
            text.LabelFontColor = new Color("#a0522d");
            text.LabelAlignment = Alignment.LowerCenter;
        }

        p.ShowLegend(Alignment.UpperLeft);
        return p;
    }

    private static ScottPlot.Plottables.Scatter Line(Plot p, double[] xs, double[] ys, Color color, string label)
    {
        var line = p.Add.Scatter(xs, ys);
        line.Color = color;
        line.LineWidth = 2;
        line.MarkerSize = 0;
        line.LegendText = label;
        return line;
    }

    private static string StripXmlDeclaration(string svg) => svg.StartsWith("<?xml", StringComparison.Ordinal) ? svg[(svg.IndexOf("?>", StringComparison.Ordinal) + 2)..] : svg;

    private static string Escape(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
