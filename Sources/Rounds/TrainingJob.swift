import Foundation
import Logging
import ProcessSupervision
import Synchronization

/// One attempt at a round's training: an external command (the LoRA script, a user's trainer,
/// the simulated engine) run under a process-group guard, so that it never outlives the run.
/// Everything it prints goes to the round's training log; lines that are JSON objects with
/// `"event": "progress"` (`step`, `steps`, `loss`, `tokens_per_s`, `eta_s`) are also logged as
/// the run's progress.
public struct TrainingJob: Sendable {
    public let command: [String]
    public let log: URL
    public let timeout: Duration?
    public let logger: Logger

    public enum Outcome: Sendable, Equatable {
        case succeeded
        case failed(String)
        case stopped
    }

    /// Runs the command to its end.
    /// - Parameter shouldStop: Polled while the job runs; true stops the job's whole group.
    public func run(shouldStop: @escaping @Sendable () -> Bool) async -> Outcome {
        let handle: SafeFileWriter
        do {
            handle = try SafeFileWriter(appendingTo: log.path, truncating: true)
        } catch {
            return .failed("\(error)")
        }
        defer { handle.close() }
        handle.write(Data("$ \(command.joined(separator: " "))\n".utf8))
        let lines = Mutex<[UInt8]>([])
        let logger = self.logger
        let process: ChildProcess
        do {
            process = try ProcessGroupGuard.start(command, name: "training-guard") { data in
                handle.write(data)
                let complete: [String] = lines.withLock { buffer in
                    buffer.append(contentsOf: data)
                    var found: [String] = []
                    while let newline = buffer.firstIndex(of: 0x0A) {
                        found.append(String(decoding: buffer[..<newline], as: UTF8.self))
                        buffer.removeSubrange(...newline)
                    }
                    return found
                }
                for line in complete { Self.report(line, logger: logger) }
            }
        } catch {
            return .failed("cannot start \(command.first ?? "?"): \(error)")
        }
        let started = ContinuousClock.now
        while process.isRunning {
            if shouldStop() {
                await ProcessGroupGuard.stopGroup(of: process, grace: .seconds(5))
                return .stopped
            }
            if let failure = handle.failure {
                // A full disk: the job's model would not fit either, and its log is lost.
                await ProcessGroupGuard.stopGroup(of: process, grace: .seconds(5))
                return .failed("the training log cannot be written (\(failure)); the job was stopped")
            }
            if let timeout, ContinuousClock.now - started > timeout {
                await ProcessGroupGuard.stopGroup(of: process, grace: .seconds(5))
                return .failed("training did not finish within \(timeout); see \(log.path)")
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        let status = await process.waitForExit()
        if let failure = handle.failure { return .failed("the training log cannot be written (\(failure))") }
        guard status == 0 else {
            let tail = process.standardErrorTail.split(separator: "\n").suffix(3).joined(separator: " | ")
            return .failed("training exited with status \(status): \(tail) (see \(log.path))")
        }
        return .succeeded
    }

    /// Logs a progress line of the job (other lines only go to the training log).
    private static func report(_ line: String, logger: Logger) {
        guard line.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let event = object["event"] as? String
        else { return }
        var metadata: Logger.Metadata = [:]
        for key in ["step", "steps", "loss", "tokens_per_s", "eta_s", "examples", "stage", "seconds"] {
            if let number = object[key] as? Double {
                metadata[key] = "\(String(format: "%.4g", number))"
            } else if let value = object[key] {
                metadata[key] = "\(value)"
            }
        }
        switch event {
        case "progress": logger.notice("training progress", metadata: metadata)
        case "stage": logger.notice("training stage", metadata: metadata)
        default: logger.info("training \(event)", metadata: metadata)
        }
    }
}
