import Foundation

/// `progress.json`: a running coordinator's latest numbers, rewritten at every progress report
/// (`launch`'s progress bar and the benchmarks follow it; scripts may too).
public struct ProgressSnapshot: Codable, Sendable, Equatable {
    /// Questions stored.
    public var done: Int
    /// Questions in the data set (an estimate until it is read to its end).
    public var total: Int
    /// Paths received.
    public var paths: Int
    public var pathsStored: Int
    public var accepted: Int
    public var voted: Int
    public var elapsedS: Double
    /// Whether the run has ended.
    public var finished: Bool

    enum CodingKeys: String, CodingKey {
        case done, total, paths, accepted, voted, finished
        case pathsStored = "paths_stored", elapsedS = "elapsed_s"
    }

    /// The snapshot in `url` (nil: none yet, or caught half-written).
    public static func read(_ url: URL) -> ProgressSnapshot? {
        (try? Data(contentsOf: url)).flatMap { try? JSONDecoder().decode(ProgressSnapshot.self, from: $0) }
    }
}

/// One line of `progress.jsonl`: a progress report's counts, seconds since the run started,
/// and the rates since the previous line (the time series `selfimprove report` draws).
public struct ProgressSample: Codable, Sendable, Equatable {
    public var tS: Double
    public var done: Int
    public var voted: Int
    public var paths: Int
    public var tokens: Int
    public var leasesFailed: Int
    public var leasesExpired: Int
    /// Absent on the first line (no previous one).
    public var pathsPerS: Double?
    public var tokensPerS: Double?

    enum CodingKeys: String, CodingKey {
        case done, voted, paths, tokens
        case tS = "t_s", leasesFailed = "leases_failed", leasesExpired = "leases_expired"
        case pathsPerS = "paths_per_s", tokensPerS = "tokens_per_s"
    }

    /// The samples of `url` in order; lines that are not samples (a torn last line) are skipped.
    public static func readAll(_ url: URL) -> [ProgressSample] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return [] }
        let decoder = JSONDecoder()
        return text.split(separator: "\n").compactMap { try? decoder.decode(ProgressSample.self, from: Data($0.utf8)) }
    }
}
