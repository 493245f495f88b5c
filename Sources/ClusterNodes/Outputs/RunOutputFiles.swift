import Foundation

/// The files a coordinator keeps up to date in the run's output folder besides the journal:
/// `progress.json` (the latest numbers, for `launch`'s progress bar and for scripts),
/// `progress.jsonl` (one sample per progress report, the time series `selfimprove report`
/// draws) and, at the end, `manifest.json`.
///
/// The progress files are best effort: a failed write loses a point of a chart, nothing else.
struct RunOutputFiles {
    let folder: URL
    /// The previous sample of `progress.jsonl`, for its rates.
    private var lastSample: (seconds: Double, paths: Int, tokens: Int)?

    init(folder: URL) {
        self.folder = folder
    }

    /// Writes `progress.json` and appends a sample to `progress.jsonl`.
    /// - Parameter finished: Whether the run has an outcome.
    mutating func writeProgress(_ progress: RunProgress, finished: Bool, now: Date = Date()) {
        let snapshot = ProgressSnapshot(done: progress.done, total: progress.total, paths: progress.pathsReceived,
                                        pathsStored: progress.pathsStored, accepted: progress.accepted, voted: progress.voted,
                                        elapsedS: progress.elapsed.seconds, finished: finished)
        if let data = try? Self.encoder.encode(snapshot) {
            try? data.write(to: folder.appendingPathComponent("progress.json"), options: .atomic)
        }
        appendSample(progress, now: now)
    }

    /// Writes `manifest.json`.
    /// - Throws: When the file cannot be written.
    func writeManifest(config: ClusterConfig, progress: RunProgress, outcome: CoordinatorActor.Outcome, durableSequence: UInt64) throws {
        try RunManifest(config: config, progress: progress, outcome: outcome, durableSequence: durableSequence)
            .write(to: folder.appendingPathComponent("manifest.json"))
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    /// One line of `progress.jsonl`: seconds since the run started, counts, and the rates since
    /// the previous line.
    private mutating func appendSample(_ progress: RunProgress, now: Date) {
        let seconds = now.timeIntervalSince(progress.startedAt)
        var sample = ProgressSample(tS: (seconds * 1000).rounded() / 1000, done: progress.done, voted: progress.voted,
                                    paths: progress.pathsReceived, tokens: progress.completionTokens,
                                    leasesFailed: progress.leasesFailed, leasesExpired: progress.leasesExpired)
        if let last = lastSample, seconds > last.seconds {
            sample.pathsPerS = Double(progress.pathsReceived - last.paths) / (seconds - last.seconds)
            sample.tokensPerS = Double(progress.completionTokens - last.tokens) / (seconds - last.seconds)
        }
        lastSample = (seconds, progress.pathsReceived, progress.completionTokens)
        guard var line = try? Self.encoder.encode(sample) else { return }
        line.append(0x0A)
        let url = folder.appendingPathComponent("progress.jsonl")
        if let handle = try? FileHandle(forWritingTo: url) {
            _ = try? handle.seekToEnd()
            try? handle.write(contentsOf: line)
            try? handle.close()
        } else {
            try? line.write(to: url)
        }
    }
}
