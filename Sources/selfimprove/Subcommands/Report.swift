import ArgumentParser
import Foundation
import RunReport

/// `selfimprove report OUTPUT`: a self-contained `report.html` of a run (or a rounds run) to
/// look at in a browser, offline.
struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write OUTPUT/report.html: a run's accuracy, calibration, throughput, samplers and failures, and accuracy per round.",
        discussion: """
        OUTPUT is a run's output folder (manifest.json, records.jsonl, progress.jsonl) or a rounds \
        run's (rounds.json; the latest sampling phase is the run shown). The page has inline CSS and \
        SVG charts only: no script, nothing fetched when it is viewed.
        """
    )

    @Argument(help: "The run's output folder.")
    var output: String

    @Option(help: "Where to write the page (default: OUTPUT/report.html).")
    var to: String?

    func run() async throws {
        let folder = URL(fileURLWithPath: output)
        let data: RunReportData
        do {
            data = try RunReportData(folder: folder)
        } catch let error as ReportError {
            throw ValidationError(error.description)
        }
        let destination = to.map { URL(fileURLWithPath: $0) } ?? folder.appendingPathComponent("report.html")
        try Data(ReportHTML.page(data).utf8).write(to: destination, options: .atomic)
        print(destination.path)
    }
}
