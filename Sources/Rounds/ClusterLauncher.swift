import ClusterNodes
import Foundation
import Logging
import ProcessSupervision
import Synchronization

/// Starts every node of a config as its own process on this machine and supervises them:
/// the coordinator first (its ready line gives the address the others join), then the others.
/// A node that dies is restarted (up to `supervision.max_restarts` times each); a coordinator
/// that crashed (killed, not failed) is restarted on the same port and resumes the run from its
/// journal, and the other nodes find it again there. A stop request stops the coordinator
/// first (it writes its manifest), then the rest.
/// Logs go to `OUTPUT/logs/NAME.log`; the coordinator's are also echoed to standard error.
public final class ClusterLauncher: Sendable {
    public struct Child: Sendable {
        let role: ClusterConfig.Role
        let name: String
        let process: ChildProcess
        let restarts: Int
        /// The node's log file (`OUTPUT/logs/NAME.log`).
        let log: SafeFileWriter
        /// Exited normally; nothing more to do.
        var exitHandled = false
    }

    public let config: ClusterConfig
    public let configFile: String
    public let childArguments: [String]
    public let terminal: TerminalOutput
    public let echoCoordinator: Bool
    public let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let lastFailure = Mutex<String?>(nil)

    /// - Parameters:
    ///   - childArguments: Options every node gets (`--set`, `--output`, logging).
    ///   - echoCoordinator: Echo the coordinator's log to standard error.
    public init(config: ClusterConfig, configFile: String, childArguments: [String], terminal: TerminalOutput, echoCoordinator: Bool, logger: Logger) {
        self.config = config
        self.configFile = URL(fileURLWithPath: configFile).standardizedFileURL.path
        self.childArguments = childArguments
        self.terminal = terminal
        self.echoCoordinator = echoCoordinator
        self.logger = logger
    }

    /// Asks the run to stop (Ctrl-C, SIGTERM).
    public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

    /// Why the last ``run()`` failed, when the launcher ended it (a node that kept dying or
    /// cannot work here); nil when it finished or the coordinator decided.
    public var failureReason: String? { lastFailure.withLock { $0 } }

    /// Runs the cluster to its end.
    /// - Returns: The coordinator's exit status (0: finished), or 1 if the cluster could not
    ///   be started or a node kept dying.
    public func run() async -> Int32 {
        let logs = config.output.appendingPathComponent("logs")
        do {
            try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        } catch {
            logger.error("Cannot create the output folder", metadata: ["folder": "\(logs.path)", "error": "\(error)"])
            return 1
        }
        let coordinatorName = config.coordinator.address.name
        guard case let .started(first, endpoint) = await startCoordinator(port: nil, restarts: 0) else { return 1 }
        var coordinator = first
        logger.info("Coordinator listening", metadata: ["endpoint": "\(endpoint)", "pid": "\(coordinator.process.pid)"])
        var others: [Child] = []
        for node in config.nodes where node.role != .coordinator {
            guard let child = start(role: node.role, name: node.address.name, coordinatorEndpoint: endpoint, restarts: 0) else {
                await stopAll(coordinator: coordinator, others: others)
                return 1
            }
            others.append(child)
        }
        logger.info("Cluster started", metadata: [
            "nodes": "\(others.count + 1)", "output": "\(config.output.path)", "logs": "\(logs.path)",
        ])

        let progressTask = terminal.isTerminal ? Task { await drawProgress() } : nil
        defer { progressTask?.cancel() }
        var failure: String?
        supervision: while true {
        while coordinator.process.isRunning {
            if stopRequested.load(ordering: .relaxed) {
                progressTask?.cancel()
                await progressTask?.value
                terminal.setBar(nil)
                logger.notice("Stopping the cluster (coordinator first, so it writes its manifest)")
                await stopAll(coordinator: coordinator, others: others)
                return NodeRunner.ExitStatus.interrupted
            }
            for (position, child) in others.enumerated() where !child.process.isRunning && !child.exitHandled {
                let status = await child.process.waitForExit()
                guard coordinator.process.isRunning, !stopRequested.load(ordering: .relaxed) else { break }
                if status == 0, child.role == .sampler {
                    // Done: a sampler told the run is over.
                    others[position].exitHandled = true
                    continue
                }
                if status == 0, await Self.exits(coordinator.process, within: .seconds(5)) {
                    // A trainer or verifier the coordinator finished, just before it exits.
                    others[position].exitHandled = true
                    break
                }
                if status == 0 {
                    // Finished by someone other than the coordinator (which the node refuses,
                    // so this should not happen) or by a bug: the run needs the node back.
                    logger.warning("Node exited 0 while the run goes on; it was not finished by the coordinator", metadata: [
                        "node": "\(child.name)", "role": "\(child.role.rawValue)",
                    ])
                }
                if status == NodeRunner.ExitStatus.unrecoverable {
                    // The node says a restart would fail the same way: stop now, with its reason.
                    let reason = await Self.unrecoverableReason(of: child.process) ?? "no reason given"
                    failure = "\(child.role.rawValue) '\(child.name)' cannot work on this machine, and restarting it cannot help: \(reason); see \(logFile(child.name).path)"
                    break
                }
                guard child.restarts < config.supervision.maxRestarts else {
                    failure = "\(child.role.rawValue) '\(child.name)' exited with status \(status) and was restarted \(child.restarts) times; see \(logFile(child.name).path)"
                    break
                }
                terminal.setBar(nil)   // the bar comes back at its next redraw
                logger.warning("Node exited; restarting it", metadata: [
                    "node": "\(child.name)", "status": "\(status)", "restart": "\(child.restarts + 1)/\(config.supervision.maxRestarts)",
                ])
                try? await Task.sleep(for: .milliseconds(500))
                guard let restarted = start(role: child.role, name: child.name, coordinatorEndpoint: endpoint, restarts: child.restarts + 1) else {
                    failure = "cannot restart '\(child.name)'"
                    break
                }
                others[position] = restarted
            }
            if failure == nil, let unwritable = ([coordinator] + others).lazy.compactMap({ $0.log.failure }).first {
                // A log that cannot be written (a full disk) loses what the nodes report: stop
                // now, while the journal still holds the run, rather than run on blind.
                failure = "\(unwritable); the run stops (it resumes from its journal when started again with the same command)"
            }
            if failure != nil { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        if failure != nil || stopRequested.load(ordering: .relaxed) { break }
        // The coordinator ended. Finished (0), failed (1) or stopped (130): the run is over.
        // Anything else (killed by a signal, crashed) is restarted; it resumes from its journal.
        let status = await coordinator.process.waitForExit()
        if [0, 1, NodeRunner.ExitStatus.interrupted].contains(status) { break }
        guard coordinator.restarts < config.supervision.maxRestarts else {
            failure = "the coordinator exited with status \(status) and was restarted \(coordinator.restarts) times; see \(logFile(coordinatorName).path)"
            break
        }
        terminal.setBar(nil)
        logger.warning("The coordinator exited; restarting it on the same address (it resumes the run from its journal)", metadata: [
            "status": "\(status)", "endpoint": "\(endpoint)", "restart": "\(coordinator.restarts + 1)/\(config.supervision.maxRestarts)",
        ])
        try? await Task.sleep(for: .milliseconds(300))
        switch await startCoordinator(port: Self.port(of: endpoint), restarts: coordinator.restarts + 1) {
        case let .started(restarted, _): coordinator = restarted
        case let .failed(reason):
            failure = reason
            break supervision
        }
        }
        progressTask?.cancel()
        await progressTask?.value
        terminal.setBar(nil)
        if let failure {
            lastFailure.withLock { $0 = failure }
            logger.error("The run failed", metadata: ["reason": "\(failure)"])
            await stopAll(coordinator: coordinator, others: others)
            return 1
        }
        let status = await coordinator.process.waitForExit()
        // The others stop by themselves once told the run is over; stop any that do not.
        for child in others {
            let waited = Task {
                try? await Task.sleep(for: .seconds(3))
                child.process.send(signal: SIGTERM)
            }
            _ = await child.process.stop(grace: config.supervision.stopGrace)
            waited.cancel()
        }
        return status
    }

    private enum CoordinatorStart {
        case started(Child, endpoint: String)
        case failed(String)
    }

    /// Starts the coordinator and waits for its ready line (which names its endpoint).
    /// - Parameter port: The port to listen on (a restarted coordinator keeps its address).
    private func startCoordinator(port: Int?, restarts: Int) async -> CoordinatorStart {
        let name = config.coordinator.address.name
        guard let coordinator = start(role: .coordinator, name: name, coordinatorEndpoint: nil, restarts: restarts, port: port) else {
            return .failed("cannot start the coordinator")
        }
        guard let ready = await coordinator.process.nextLine(timeout: .seconds(60)),
              let object = try? JSONSerialization.jsonObject(with: Data(ready.utf8)) as? [String: Any],
              let endpoint = object["endpoint"] as? String
        else {
            let status = await coordinator.process.stop(grace: .seconds(2))
            logger.error("The coordinator did not start", metadata: ["status": "\(status)", "log": "\(logFile(name).path)"])
            return .failed("the coordinator did not start (status \(status)); see \(logFile(name).path)")
        }
        return .started(coordinator, endpoint: endpoint)
    }

    /// Whether `process` exits within `limit` (polled; it is not waited for beyond that).
    private static func exits(_ process: ChildProcess, within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        return !process.isRunning
    }

    /// The reason on the `{"unrecoverable": ...}` line a node prints before exiting with
    /// ``NodeRunner/ExitStatus/unrecoverable``.
    public static func unrecoverableReason(of process: ChildProcess) async -> String? {
        while let line = await process.nextLine(timeout: .milliseconds(500)) {
            if let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
               let reason = object["unrecoverable"] as? String
            {
                return reason
            }
        }
        return nil
    }

    /// The port of a `tcp://host:port` endpoint.
    public static func port(of endpoint: String) -> Int? {
        endpoint.split(separator: ":").last.flatMap { Int($0) }
    }

    private func logFile(_ name: String) -> URL {
        config.output.appendingPathComponent("logs").appendingPathComponent("\(name).log")
    }

    private func start(role: ClusterConfig.Role, name: String, coordinatorEndpoint: String?, restarts: Int, port: Int? = nil) -> Child? {
        var arguments = ["node", "--config", configFile, "--role", role.rawValue, "--name", name, "--stop-on-stdin-eof"] + childArguments
        if role == .coordinator { arguments.append("--ready-line") }
        if let port { arguments += ["--port", "\(port)"] }
        if let coordinatorEndpoint { arguments += ["--coordinator", coordinatorEndpoint] }
        let url = logFile(name)
        let log: SafeFileWriter
        do {
            log = try SafeFileWriter(appendingTo: url.path)
        } catch {
            logger.error("Cannot open the node's log file", metadata: ["file": "\(url.path)", "error": "\(error)"])
            return nil
        }
        let terminal = echoCoordinator && role == .coordinator ? self.terminal : nil
        do {
            let process = try ChildProcess(executable: currentExecutablePath(), arguments: arguments, standardErrorHandler: { data in
                log.write(data)
                terminal?.write(logBytes: data)
            })
            logger.debug("Started node", metadata: ["role": "\(role.rawValue)", "node": "\(name)", "pid": "\(process.pid)"])
            return Child(role: role, name: name, process: process, restarts: restarts, log: log)
        } catch {
            logger.error("Cannot start a node", metadata: ["node": "\(name)", "error": "\(error)"])
            return nil
        }
    }

    /// Stops the coordinator first (it writes its manifest on SIGTERM), then every other node.
    private func stopAll(coordinator: Child, others: [Child]) async {
        _ = await coordinator.process.stop(grace: config.supervision.stopGrace)
        await withTaskGroup(of: Void.self) { group in
            for child in others {
                group.addTask { _ = await child.process.stop(grace: self.config.supervision.stopGrace) }
            }
        }
    }

    /// Redraws the progress bar from the coordinator's `progress.json`.
    private func drawProgress() async {
        let url = config.output.appendingPathComponent("progress.json")
        var last: (time: ContinuousClock.Instant, done: Int) = (.now, 0)
        var rate = 0.0
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(500))
            guard let snapshot = ProgressSnapshot.read(url) else { continue }
            let (done, total, paths, elapsed) = (snapshot.done, snapshot.total, snapshot.paths, snapshot.elapsedS)
            let now = ContinuousClock.now
            let seconds = Double((now - last.time).components.seconds) + Double((now - last.time).components.attoseconds) / 1e18
            if seconds > 0, done >= last.done { rate = rate == 0 ? Double(done - last.done) / seconds : 0.7 * rate + 0.3 * Double(done - last.done) / seconds }
            last = (now, done)
            let eta = done >= total ? "0s" : rate > 0 ? "\(Int((Double(total - done) / rate).rounded()))s" : "?"
            terminal.setBar(TerminalOutput.bar(done: done, total: total, pathsPerSecond: elapsed > 0 ? Double(paths) / elapsed : 0, eta: eta))
        }
    }
}
