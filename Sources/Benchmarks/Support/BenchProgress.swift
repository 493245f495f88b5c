import ClusterNodes
import Foundation
import Logging
import Rounds
import Synchronization

/// What a benchmark run has done so far, for the progress lines it writes on stderr while it
/// runs: a benchmark slowed down by other load says what it is waiting for instead of
/// printing nothing.
final class BenchProgress: Sendable {
    private struct State {
        var paths = 0
        var requestsInFlight = 0
        /// A cluster's `progress.json`, read when a line is due.
        var statusFile: URL?
    }

    /// Paths the run draws in all.
    let total: Int
    private let state = Mutex(State())

    init(total: Int) { self.total = total }

    /// A direct request went out.
    func requestSent() { state.withLock { $0.requestsInFlight += 1 } }

    /// A direct request came back with `paths` paths.
    func requestAnswered(paths: Int) {
        state.withLock {
            $0.requestsInFlight -= 1
            $0.paths += paths
        }
    }

    /// The cluster run's progress comes from the coordinator's `progress.json`.
    func follow(_ statusFile: URL) { state.withLock { $0.statusFile = statusFile } }

    /// One line: how far the run is and what it is waiting for.
    func describe() -> String {
        let current = state.withLock { $0 }
        guard let file = current.statusFile else {
            return "\(current.paths)/\(total) paths; waiting for llama-server to answer \(current.requestsInFlight) requests"
        }
        guard let status = ProgressSnapshot.read(file) else {
            return "waiting for the cluster's nodes to start and join (no \(file.lastPathComponent) yet)"
        }
        let paths = status.paths, done = status.done, questions = status.total
        let waiting = paths < total ? "waiting for llama-server to answer the sampler's requests"
            : "every path is in; waiting for the last records to be voted, scored and stored"
        return "\(paths)/\(total) paths, \(done)/\(questions) questions stored; \(waiting)"
    }

    /// Logs ``describe()`` every `interval` until the returned task is cancelled.
    func watch(label: String, every interval: Duration, logger: Logger) -> Task<Void, Never> {
        let started = ContinuousClock.now
        return Task {
            while true {
                do { try await Task.sleep(for: interval) } catch { return }
                let seconds = Int((ContinuousClock.now - started).components.seconds)
                logger.notice("bench: \(label) after \(seconds)s: \(self.describe())")
            }
        }
    }
}
