import Foundation
import Rounds

/// `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched at
/// view time) with a run's figures and charts.
public enum ReportHTML {
    public static func page(_ data: RunReportData, generated: Date = Date()) -> String {
        var body = "<h1>\(escape(data.title))</h1>\n"
        if let rounds = data.rounds {
            // A rounds run leads with its rounds; the latest phase's figures follow.
            body += "<p class=meta>rounds · \(escape(rounds.phase)) · generated \(ISO8601DateFormatter().string(from: generated))</p>\n"
            body += RoundsReportHTML.sections(rounds)
            body += "<h2 class=phase>The latest phase</h2>\n"
        }
        body += "<p class=meta>status <b>\(escape(data.status))</b> · method \(escape(data.method)) · "
            + "\(data.counts["records"] ?? 0) questions stored · \(format(data.seconds, "%.1f")) s · generated \(ISO8601DateFormatter().string(from: generated))</p>\n"
        body += summary(data)
        body += section("Calibration: accuracy of the vote by its confidence", calibrationChart(data.calibration))
        body += section("Throughput over the run", rateChart(data.samples))
        body += section("Work per sampler (paths drawn)", samplerChart(data.samplerShare))
        body += section("Lease failures", failures(data.counts))
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>selfimprove report: \(escape(data.title))</title>
        <style>
        body{font-family:sans-serif;margin:24px;color:#222;background:#fff;max-width:980px}
        h1{margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.meta{color:#555}
        table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f2f2f2}
        .cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #ccc;border-radius:6px;padding:10px 16px;min-width:130px}
        .card b{display:block;font-size:22px}.none{color:#777;font-style:italic}svg text{font-size:11px;fill:#333}
        h2.phase{border-top:2px solid #ccc;padding-top:16px;margin-top:36px}table.small{font-size:13px}table.small td,table.small th{padding:3px 6px}.refused{color:#a33}.promoted{color:#285}
        </style></head><body>
        \(body)</body></html>

        """
    }

    public static func section(_ title: String, _ content: String) -> String {
        "<h2>\(escape(title))</h2>\n\(content)\n"
    }

    private static func summary(_ data: RunReportData) -> String {
        var cards: [(String, String)] = []
        if data.labelled > 0 {
            cards.append(("accuracy (majority)", percent(data.accuracy["majority"])))
            cards.append(("accuracy (first path)", percent(data.accuracy["first_path"])))
            cards.append(("pass@m", percent(data.accuracy["pass_at_m"])))
        }
        cards.append(("vote agreement", data.meanConfidence.map { format($0, "%.3f") } ?? "-"))
        cards.append(("acceptance", percent(data.acceptance)))
        cards.append(("paths received", "\(data.counts["paths_received"] ?? 0)"))
        cards.append(("completion tokens", "\(data.counts["completion_tokens"] ?? 0)"))
        let items = cards.map { "<div class=card>\(escape($0.0))<b>\(escape($0.1))</b></div>" }.joined()
        let note = data.labelled > 0 ? "" : "<p class=none>No labelled questions: accuracy is not known.</p>"
        return "<div class=cards>\(items)</div>\(note)\n"
    }

    private static func failures(_ counts: [String: Int]) -> String {
        let rows = [("leases granted", "leases_granted"), ("leases expired (re-leased)", "leases_expired"), ("leases failed (backend errors)", "leases_failed"),
                    ("samplers lost", "samplers_lost"), ("paths given up", "paths_given_up"), ("late or duplicate paths dropped", "paths_dropped")]
        return "<table>" + rows.map { "<tr><th>\($0.0)</th><td>\(counts[$0.1] ?? 0)</td></tr>" }.joined() + "</table>"
    }

    // MARK: - Charts (SVG)

    public static let width = 640.0, height = 220.0, left = 48.0, bottom = 28.0, top = 10.0

    public static func frame(_ content: String, yLabel: String, yMax: Double) -> String {
        let plotHeight = height - bottom - top
        var axis = "<line x1='\(left)' y1='\(top)' x2='\(left)' y2='\(height - bottom)' stroke='#333'/>"
            + "<line x1='\(left)' y1='\(height - bottom)' x2='\(width - 8)' y2='\(height - bottom)' stroke='#333'/>"
        for step in 0 ... 4 {
            let value = yMax * Double(step) / 4
            let y = height - bottom - plotHeight * Double(step) / 4
            axis += "<line x1='\(left - 4)' y1='\(y)' x2='\(width - 8)' y2='\(y)' stroke='#eee'/>"
                + "<text x='\(left - 6)' y='\(y + 4)' text-anchor='end'>\(format(value, yMax >= 10 ? "%.0f" : "%.2f"))</text>"
        }
        axis += "<text x='12' y='\(top + plotHeight / 2)' transform='rotate(-90 12 \(top + plotHeight / 2))' text-anchor='middle'>\(escape(yLabel))</text>"
        return "<svg xmlns='http://www.w3.org/2000/svg' width='\(width)' height='\(height)' role='img'>\(axis)\(content)</svg>"
    }

    /// Bars of (label, value, colour) with values in [0, yMax].
    private static func bars(_ items: [(label: String, value: Double, colour: String)], yMax: Double, yLabel: String, extra: String = "") -> String {
        guard !items.isEmpty else { return "<p class=none>Nothing to draw.</p>" }
        let plotWidth = width - left - 16, plotHeight = height - bottom - top
        let slot = plotWidth / Double(items.count)
        var content = ""
        for (index, item) in items.enumerated() {
            let barHeight = yMax > 0 ? plotHeight * min(1, item.value / yMax) : 0
            let x = left + 4 + slot * Double(index)
            content += "<rect x='\(x)' y='\(height - bottom - barHeight)' width='\(max(1, slot - 8))' height='\(barHeight)' fill='\(item.colour)'/>"
                + "<text x='\(x + (slot - 8) / 2)' y='\(height - bottom + 14)' text-anchor='middle'>\(escape(item.label))</text>"
        }
        return frame(content + extra, yLabel: yLabel, yMax: yMax)
    }

    private static func calibrationChart(_ buckets: [RunReportData.Bucket]) -> String {
        let used = buckets.filter { $0.questions > 0 }
        guard !used.isEmpty else { return "<p class=none>No labelled questions: no calibration.</p>" }
        let chart = bars(used.map { ("\(format($0.low, "%.1f"))-\(format($0.high, "%.1f"))", Double($0.right) / Double($0.questions), "#4a7ebb") },
                         yMax: 1, yLabel: "accuracy")
        let table = "<table><tr><th>confidence</th>" + used.map { "<th>\(format($0.low, "%.1f"))-\(format($0.high, "%.1f"))</th>" }.joined()
            + "</tr><tr><th>questions</th>" + used.map { "<td>\($0.questions)</td>" }.joined()
            + "</tr><tr><th>right</th>" + used.map { "<td>\($0.right)</td>" }.joined() + "</tr></table>"
        return chart + table
    }

    private static func rateChart(_ samples: [RunReportData.Sample]) -> String {
        guard samples.count >= 2, let end = samples.map(\.seconds).max(), end > 0 else {
            return "<p class=none>Too few progress samples (progress.jsonl) to draw.</p>"
        }
        let plotWidth = width - left - 16, plotHeight = height - bottom - top
        func line(_ values: [Double], colour: String, yMax: Double) -> String {
            let points = zip(samples, values).map { sample, value in
                "\(format(left + plotWidth * sample.seconds / end, "%.1f")),\(format(height - bottom - plotHeight * min(1, value / max(yMax, 1e-9)), "%.1f"))"
            }.joined(separator: " ")
            return "<polyline fill='none' stroke='\(colour)' stroke-width='2' points='\(points)'/>"
        }
        let paths = samples.map(\.pathsPerSecond), tokens = samples.map(\.tokensPerSecond)
        let xLabel = "<text x='\(width - 8)' y='\(height - 6)' text-anchor='end'>seconds (0-\(format(end, "%.0f")))</text>"
        return frame(line(paths, colour: "#4a7ebb", yMax: max(1, paths.max() ?? 1)) + xLabel, yLabel: "paths/s", yMax: max(1, paths.max() ?? 1))
            + frame(line(tokens, colour: "#d9822b", yMax: max(1, tokens.max() ?? 1)) + xLabel, yLabel: "tokens/s", yMax: max(1, tokens.max() ?? 1))
    }

    private static func samplerChart(_ share: [(sampler: String, paths: Int)]) -> String {
        let total = share.reduce(0) { $0 + $1.paths }
        guard total > 0 else { return "<p class=none>No paths.</p>" }
        let maxPaths = Double(share.map(\.paths).max() ?? 1)
        return bars(share.map { ($0.sampler, Double($0.paths), "#5b9e5b") }, yMax: maxPaths, yLabel: "paths")
            + "<table>" + share.map { "<tr><th>\(escape($0.sampler))</th><td>\($0.paths)</td><td>\(format(100 * Double($0.paths) / Double(total), "%.1f"))%</td></tr>" }.joined()
            + "</table>"
    }

    // MARK: - Text

    public static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }

    public static func percent(_ value: Double?) -> String { value.map { format($0 * 100, "%.1f") + "%" } ?? "-" }

    public static func format(_ value: Double, _ pattern: String) -> String { String(format: pattern, value) }
}
