import ClusterNodes
import Foundation
import Rounds

/// What `selfimprove report` shows, read from a run's output folder: `manifest.json`,
/// `records.jsonl` (confidence and correctness per question, which sampler drew each path),
/// `progress.jsonl` (rates over the run) and, for a rounds folder, `rounds.json`.
public struct RunReportData {
    public struct Bucket {
        var low: Double
        var high: Double
        var questions = 0
        var right = 0
    }

    public struct Sample {
        var seconds: Double
        var pathsPerSecond: Double
        var tokensPerSecond: Double
    }


    public var title: String
    public var status: String
    public var method: String
    public var seconds: Double
    public var counts: [String: Int] = [:]
    public var accuracy: [String: Double] = [:]
    public var labelled = 0
    public var meanConfidence: Double?
    public var acceptance: Double?
    /// Accuracy of the vote by confidence, tenths (LMSI's calibration figure).
    public var calibration: [Bucket] = (0 ..< 10).map { Bucket(low: Double($0) / 10, high: Double($0 + 1) / 10) }
    public var samplerShare: [(sampler: String, paths: Int)] = []
    public var samples: [Sample] = []
    /// The rounds, when the folder is a rounds run's (`rounds.json`).
    public var rounds: RoundsSummary?

    /// Reads `folder` (a run's output, or a rounds run's, whose latest phase with a manifest is
    /// the run shown).
    /// - Throws: ``ReportError`` naming the file that is missing or unreadable.
    public init(folder: URL) throws {
        var runFolder = folder
        let roundsFile = folder.appendingPathComponent("rounds.json")
        if FileManager.default.fileExists(atPath: roundsFile.path) {
            do {
                let summary = try RoundsSummary.read(roundsFile)
                rounds = summary
                runFolder = Self.latestPhase(in: folder, rounds: summary.rounds.count) ?? folder
            } catch {
                throw ReportError("\(roundsFile.path) is unreadable (\(error))")
            }
        }
        let manifestURL = runFolder.appendingPathComponent("manifest.json")
        guard let manifest = try? RunManifest.read(manifestURL) else {
            throw ReportError("no readable manifest.json in \(runFolder.path): is it a run's output folder (or a rounds run's)?")
        }
        title = manifest.run
        status = manifest.status.rawValue
        method = manifest.method.name
        seconds = manifest.timings.seconds
        counts = manifest.counts.byName
        if let accuracy = manifest.accuracy {
            labelled = accuracy.labelled
            self.accuracy = ["first_path": accuracy.firstPath, "majority": accuracy.majority, "pass_at_m": accuracy.passAtM]
        }
        meanConfidence = manifest.meanConfidence
        if let voted = counts["voted"], voted > 0 { acceptance = Double(counts["accepted"] ?? 0) / Double(voted) }
        try readRecords(runFolder.appendingPathComponent("records.jsonl"))
        readProgress(runFolder.appendingPathComponent("progress.jsonl"))
    }

    private mutating func readRecords(_ url: URL) throws {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw ReportError("no readable records.jsonl in \(url.deletingLastPathComponent().path)")
        }
        var share: [String: Int] = [:]
        for (number, line) in text.split(separator: "\n").enumerated() {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let record = object["record"] as? [String: Any]
            else {
                throw ReportError("records.jsonl line \(number + 1) is not a record")
            }
            for path in record["paths"] as? [[String: Any]] ?? [] where path["given_up"] as? Bool != true {
                share[path["sampler"] as? String ?? "-", default: 0] += 1
            }
            guard let right = record["majority_correct"] as? Bool else { continue }
            let confidence = (record["confidence"] as? Double) ?? Double(record["confidence"] as? Int ?? 0)
            let bucket = min(9, max(0, Int(confidence * 10)))
            calibration[bucket].questions += 1
            if right { calibration[bucket].right += 1 }
        }
        samplerShare = share.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    private mutating func readProgress(_ url: URL) {
        for sample in ProgressSample.readAll(url) {
            guard let paths = sample.pathsPerS, let tokens = sample.tokensPerS else { continue }
            samples.append(Sample(seconds: sample.tS, pathsPerSecond: paths, tokensPerSecond: tokens))
        }
    }

    /// The latest round's sampling phase (or the baseline's evaluation, `round-0/eval`) that has a manifest.
    private static func latestPhase(in folder: URL, rounds count: Int) -> URL? {
        var candidates: [URL] = []
        for round in stride(from: count, through: 1, by: -1) {
            candidates.append(folder.appendingPathComponent("round-\(round)/sample"))
        }
        candidates.append(folder.appendingPathComponent("round-0/eval"))
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("manifest.json").path) }
    }
}

/// A report cannot be made from the folder; the message names what is missing.
public struct ReportError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
