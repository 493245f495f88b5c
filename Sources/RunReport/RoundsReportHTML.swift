import Foundation
import Rounds
import SelfImproveCore

/// The rounds part of `report.html`: per model (the starting one, then each round's
/// candidate) pass@1, maj@m, greedy and large-k pass@k with their 95% intervals, vote
/// confidence beside accuracy (sharpening shows as confidence rising faster), calibration
/// error, flips against the model in force, each gate decision with its rule and reason, the
/// extra sets, and what each round's imagination and selection did.
public enum RoundsReportHTML {
    public typealias Evaluation = RoundsSummary.Evaluation

    public static func sections(_ summary: RoundsSummary) -> String {
        let models: [(name: String, evaluation: Evaluation?, round: RoundsSummary.Round?)] =
            [("starting model", summary.baseline, nil)] + summary.rounds.map { ("round \($0.round)", $0.after, $0) }
        var html = "<p>\(ReportHTML.escape(summary.stopReason ?? "running")); best model: \(ReportHTML.escape(summary.bestModel.version))</p>\n"
        html += ReportHTML.section("Accuracy and confidence per round", chart(models) + table(models))
        html += ReportHTML.section("Gate decisions", decisions(summary.rounds))
        let extraNames = Array(Set(models.flatMap { $0.evaluation?.extra?.keys.map { $0 } ?? [] })).sorted()
        if !extraNames.isEmpty { html += ReportHTML.section("Extra evaluation sets (pass@1)", extraTable(models, names: extraNames)) }
        if summary.rounds.contains(where: { $0.imagination != nil || $0.selection != nil }) {
            html += ReportHTML.section("Training data per round", dataTable(summary.rounds))
        }
        return html
    }

    private static func interval(_ estimate: Estimate?) -> String {
        guard let estimate else { return "-" }
        return "\(ReportHTML.percent(estimate.mean)) <small>[\(ReportHTML.format(estimate.lower * 100, "%.1f")), \(ReportHTML.format(estimate.upper * 100, "%.1f"))]</small>"
    }

    /// Bars: pass@1 with its interval as a whisker; dots: vote confidence.
    private static func chart(_ models: [(name: String, evaluation: Evaluation?, round: RoundsSummary.Round?)]) -> String {
        let width = ReportHTML.width, height = ReportHTML.height, left = ReportHTML.left, bottom = ReportHTML.bottom, top = ReportHTML.top
        let plotWidth = width - left - 16, plotHeight = height - bottom - top
        let slot = plotWidth / Double(max(1, models.count))
        func y(_ value: Double) -> Double { height - bottom - plotHeight * min(1, max(0, value)) }
        var content = ""
        for (index, model) in models.enumerated() {
            let x = left + 4 + slot * Double(index), barWidth = max(1, slot - 8), middle = x + barWidth / 2
            let refused = model.round?.promoted == false
            if let pass = model.evaluation?.passAt1 {
                content += "<rect x='\(x)' y='\(y(pass.mean))' width='\(barWidth)' height='\(height - bottom - y(pass.mean))' fill='\(refused ? "#bbbbbb" : "#4a7ebb")'/>"
                content += "<line x1='\(middle)' y1='\(y(pass.lower))' x2='\(middle)' y2='\(y(pass.upper))' stroke='#222' stroke-width='2'/>"
            }
            if let confidence = model.evaluation?.meanConfidence {
                content += "<circle cx='\(middle)' cy='\(y(confidence))' r='5' fill='#d9822b'/>"
            }
            content += "<text x='\(middle)' y='\(height - bottom + 14)' text-anchor='middle'>\(ReportHTML.escape(model.name))</text>"
        }
        let legend = "<text x='\(width - 10)' y='\(top + 10)' text-anchor='end'>bars: pass@1 (95% interval); dots: vote confidence; grey: not promoted</text>"
        return ReportHTML.frame(content + legend, yLabel: "pass@1 / confidence", yMax: 1)
    }

    private static func table(_ models: [(name: String, evaluation: Evaluation?, round: RoundsSummary.Round?)]) -> String {
        let k = models.compactMap { $0.evaluation?.passAtK?.k }.first
        var html = "<table class=small><tr><th></th><th>pass@1</th><th>maj@m</th><th>greedy</th><th>pass@m</th><th>pass@\(k.map(String.init) ?? "k")</th>"
            + "<th>confidence</th><th title='expected calibration error of vote confidence'>ECE</th><th title='held-out majorities right→wrong / wrong→right against the model in force'>flips r→w / w→r</th><th>promoted</th></tr>"
        for model in models {
            let evaluation = model.evaluation
            let flips = model.round?.decision?.flips.map { "\($0.rightToWrong) / \($0.wrongToRight) <small>of \($0.paired)</small>" } ?? "-"
            let promoted = model.round.map { round in round.promoted.map { $0 ? "<span class=promoted>yes</span>" : "<span class=refused>no</span>" } ?? "-" } ?? ""
            html += "<tr><th>\(ReportHTML.escape(model.name))</th><td>\(interval(evaluation?.passAt1))</td><td>\(interval(evaluation?.majAtM))</td>"
                + "<td>\(interval(evaluation?.greedy))</td><td>\(interval(evaluation?.passAtM))</td><td>\(interval(evaluation?.passAtK?.estimate))</td>"
                + "<td>\(evaluation.map { ReportHTML.format($0.meanConfidence, "%.3f") } ?? "-")</td>"
                + "<td>\(evaluation?.calibrationError.map { ReportHTML.format($0, "%.3f") } ?? "-")</td><td>\(flips)</td><td>\(promoted)</td></tr>"
        }
        return html + "</table>"
    }

    private static func decisions(_ rounds: [RoundsSummary.Round]) -> String {
        let items = rounds.compactMap { round -> String? in
            guard let decision = round.decision else { return nil }
            let verdict = decision.promoted ? "<span class=promoted>promoted</span>" : "<span class=refused>refused by \(ReportHTML.escape(decision.rule ?? "?"))</span>"
            return "<li>round \(round.round): \(verdict): \(ReportHTML.escape(decision.reason))</li>"
        }
        return items.isEmpty ? "<p class=none>No candidate was judged yet.</p>" : "<ul>\(items.joined())</ul>"
    }

    private static func extraTable(_ models: [(name: String, evaluation: Evaluation?, round: RoundsSummary.Round?)], names: [String]) -> String {
        var html = "<table><tr><th></th>" + names.map { "<th>\(ReportHTML.escape($0))</th>" }.joined() + "</tr>"
        for model in models {
            html += "<tr><th>\(ReportHTML.escape(model.name))</th>" + names.map { "<td>\(interval(model.evaluation?.extra?[$0]?.passAt1))</td>" }.joined() + "</tr>"
        }
        return html + "</table>"
    }

    private static func dataTable(_ rounds: [RoundsSummary.Round]) -> String {
        var html = "<table class=small><tr><th></th><th>imagined: written / parsed / dup. (held-out) / added / answered / accepted / kept</th>"
            + "<th>confidence histogram (tenths)</th><th>band</th><th>in band</th><th>examples this round</th><th>trained (questions)</th><th>trained from</th></tr>"
        for round in rounds {
            let imagination = round.imagination.map {
                "\($0.written) / \($0.parsed) / \($0.duplicates) (\($0.heldOutDuplicates)) / \($0.added) / \($0.answered) / \($0.accepted) / \($0.kept)"
            } ?? "-"
            let selection = round.selection
            html += "<tr><th>round \(round.round)</th><td>\(imagination)</td>"
                + "<td>\(selection.map { $0.confidenceHistogram.map(String.init).joined(separator: " ") } ?? "-")</td>"
                + "<td>\(selection.map { $0.band.map { ReportHTML.format($0, "%.2f") }.joined(separator: "-") } ?? "-")</td>"
                + "<td>\(selection.map { "\($0.questionsInBand)" } ?? "-")</td><td>\(selection.map { "\($0.examplesThisRound)" } ?? "-")</td>"
                + "<td>\(selection.map { "\($0.examplesTrained) (\($0.questionsTrained))" } ?? "-")</td>"
                + "<td>\(ReportHTML.escape(round.trainedFrom.map { String($0.suffix(24)) } ?? "-"))</td></tr>"
        }
        return html + "</table>"
    }
}
