import Foundation
import ProcessSupervision
import Testing

/// `selfimprove report`: a self-contained page, rendered for real in headless Chromium.
@Suite("Run report", .serialized)
struct ReportRunTests {
    static let chromium = "/usr/bin/chromium"

    /// Renders `page` to a PNG with headless Chromium; returns the PNG and the console errors
    /// it logged (uncaught exceptions and errors of the page's scripts).
    private func render(_ page: URL, to png: URL) async throws -> [String] {
        let run = try ChildProcess(executable: Self.chromium, arguments: [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
            "--window-size=1000,1600", "--screenshot=\(png.path)", page.absoluteString,
        ])
        let status = await run.waitForExit()
        #expect(status == 0, "chromium failed: \(run.standardErrorTail.suffix(2000))")
        return run.standardErrorTail.split(separator: "\n").filter { $0.contains(":CONSOLE") && ($0.contains("Uncaught") || $0.contains("Error")) }.map(String.init)
    }

    /// The share of non-white pixels of a PNG (8-bit RGB or RGBA, as Chromium writes them),
    /// decoded with Python's standard library.
    private func inkShare(_ png: URL) async throws -> Double {
        let script = """
        import struct, sys, zlib
        data = open(sys.argv[1], 'rb').read()
        pos, idat, width, height, channels = 8, b'', 0, 0, 0
        while pos < len(data):
            length, kind = struct.unpack('>I4s', data[pos:pos + 8])
            body = data[pos + 8:pos + 8 + length]
            if kind == b'IHDR':
                width, height, depth, colour = struct.unpack('>IIBB', body[:10])
                channels = {2: 3, 6: 4}[colour]
            elif kind == b'IDAT':
                idat += body
            pos += 12 + length
        raw, stride, previous, ink = zlib.decompress(idat), width * channels, bytearray(width * channels), 0
        for row in range(height):
            start = row * (stride + 1)
            kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                up, corner = previous[i], previous[i - channels] if i >= channels else 0
                if kind == 1: line[i] = (line[i] + left) & 255
                elif kind == 2: line[i] = (line[i] + up) & 255
                elif kind == 3: line[i] = (line[i] + (left + up) // 2) & 255
                elif kind == 4:
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
            ink += sum(1 for x in range(0, stride, channels) if min(line[x:x + 3]) < 240)
            previous = line
        print(ink / (width * height), file=sys.stderr)
        """
        let run = try ChildProcess(executable: "/usr/bin/env", arguments: ["python3", "-c", script, png.path])
        #expect(await run.waitForExit() == 0, "\(run.standardErrorTail)")
        return Double(run.standardErrorTail.split(separator: "\n").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1
    }

    @Test(.timeLimit(.minutes(3)))
    func theReportIsSelfContainedAndRendersWithoutErrors() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.chromium), "headless Chromium is missing: run cluster/setup-test-tools (cluster/test does)")
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("out")
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: [
            "launch", RunTestSupport.repository.appendingPathComponent("cluster/synthetic.yaml").path, "--output", output.path,
            "--set", "dataset.limit=120", "--set", "monitor.interval=200ms", "--set", "samplers.0.backend.time_to_first_token=100ms",
        ])
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let report = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["report", output.path])
        #expect(await report.waitForExit() == 0, "report failed: \(report.standardErrorTail)")
        let page = output.appendingPathComponent("report.html")
        let html = try String(contentsOf: page, encoding: .utf8)
        // Self-contained: nothing to fetch, no script.
        #expect(!html.contains("<script") && !html.contains("src=") && !html.contains("<link") && !html.contains("@import"))
        // (the SVG namespace is an identifier, never fetched)
        let addresses = html.replacingOccurrences(of: "xmlns='http://www.w3.org/2000/svg'", with: "")
        #expect(!addresses.contains("http://") && !addresses.contains("https://"))
        for section in ["Calibration", "Throughput over the run", "Work per sampler", "Lease failures", "accuracy (majority)"] {
            #expect(html.contains(section), "\(section)")
        }
        #expect(html.contains("sampler-1") && html.contains("sampler-2"))
        #expect(html.contains("<polyline"), "the rates are drawn from progress.jsonl")

        let png = folder.appendingPathComponent("report.png")
        let errors = try await render(page, to: png)
        #expect(errors.isEmpty, "\(errors)")
        let ink = try await inkShare(png)
        #expect(ink > 0.02 && ink < 0.9, "the screenshot is blank or a solid block: \(ink) of its pixels are not white")

        // The checks can fail: a page with a script error is caught, a blank page is blank.
        let broken = folder.appendingPathComponent("broken.html")
        try "<html><body><p>x</p><script>undefinedFunction();</script></body></html>".write(to: broken, atomically: true, encoding: .utf8)
        #expect(!(try await render(broken, to: folder.appendingPathComponent("broken.png"))).isEmpty)
        let blank = folder.appendingPathComponent("blank.html")
        try "<html><body></body></html>".write(to: blank, atomically: true, encoding: .utf8)
        _ = try await render(blank, to: folder.appendingPathComponent("blank.png"))
        #expect(try await inkShare(folder.appendingPathComponent("blank.png")) < 0.001)
    }

    /// A rounds folder's page leads with its rounds: per model pass@1, maj@m, greedy and
    /// large-k pass@k with intervals, confidence and calibration, flips, each gate decision with
    /// its rule and reason, the extra sets and the training data; it renders without errors.
    @Test(.timeLimit(.minutes(4)))
    func aRoundsRunsReportShowsEachRoundWithIntervalsFlipsAndDecisions() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: [
            "launch", RunTestSupport.repository.appendingPathComponent("cluster/rounds-synthetic.yaml").path, "--output", folder.path,
            "--set", "dataset.limit=40", "--set", "rounds.evaluation.dataset.limit=40", "--set", "rounds.max=2",
            "--set", "rounds.imagination={prompts: 10, paths: 2}", "--set", "rounds.evaluation.pass_at_k={k: 8, n: 16, questions: 20}",
            "--set", "rounds.evaluation.extra=[{name: two-step, dataset: {path: data/arithmetic-2step-eval-100.jsonl, format: gsm8k, limit: 20}}]",
        ])
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let report = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["report", folder.path])
        #expect(await report.waitForExit() == 0, "report failed: \(report.standardErrorTail)")
        let html = try String(contentsOf: folder.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(html.contains("Accuracy and confidence per round") && html.contains("<th>starting model</th>") && html.contains("<th>round 1</th>"))
        // The rounds come first, the latest phase after them.
        let roundsAt = try #require(html.range(of: "Accuracy and confidence per round")), phaseAt = try #require(html.range(of: "The latest phase"))
        #expect(roundsAt.lowerBound < phaseAt.lowerBound)
        let rounds = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("rounds.json"))) as? [String: Any])
        let first = try #require((rounds["rounds"] as? [[String: Any]])?.first)
        let pass = try #require((first["after"] as? [String: Any])?["pass_at_1"] as? [String: Double])
        let shown = String(format: "%.1f%% <small>[%.1f, %.1f]</small>", pass["mean"]! * 100, pass["lower"]! * 100, pass["upper"]! * 100)
        #expect(html.contains("<th>round 1</th><td>\(shown)</td>"), "round 1's pass@1 with its interval \(shown) is in the table")
        #expect(html.contains("<th>pass@8</th>"))
        #expect(html.contains("flips r→w / w→r"))
        let reason = try #require((first["decision"] as? [String: Any])?["reason"] as? String)
        #expect(html.contains(escaped(reason)), "the gate's reason is shown")
        #expect(html.contains("Extra evaluation sets") && html.contains("<th>two-step</th>"))
        #expect(html.contains("Training data per round"))
        let errors = try await render(folder.appendingPathComponent("report.html"), to: folder.appendingPathComponent("rounds.png"))
        #expect(errors.isEmpty, "\(errors)")
        #expect(try await inkShare(folder.appendingPathComponent("rounds.png")) > 0.01)
    }

    /// The page's escaping of text (as ReportHTML.escape).
    private func escaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }

    @Test func aFolderWithoutARunIsRefusedByName() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let report = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["report", folder.path])
        #expect(await report.waitForExit() != 0)
        #expect(report.standardErrorTail.contains("no readable manifest.json in \(folder.path)"))
    }
}
