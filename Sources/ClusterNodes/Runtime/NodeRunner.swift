import ActorCluster
import Backends
import Distributed
import Foundation
import Logging
import SelfImproveCore
import Synchronization
import Verifiers

/// Runs one node of a cluster (any role) in this process until the run ends or a stop is
/// requested: `selfimprove node` and `selfimprove launch`'s children go through here.
public enum NodeRunner {
    /// Exit statuses a node process uses.
    public enum ExitStatus {
        public static let success: Int32 = 0
        public static let failed: Int32 = 1
        /// Stopped by SIGINT/SIGTERM before the run finished.
        public static let interrupted: Int32 = 130
        /// The node cannot do its work on this machine and a restart would fail the same way
        /// (its model server dies of SIGILL here, say): supervisors stop the run instead of
        /// restarting it (sysexits' EX_UNAVAILABLE).
        public static let unrecoverable: Int32 = 69
    }

    /// The node cannot work here, for a reason a restart would meet again (see
    /// ``ExitStatus/unrecoverable``). Thrown by ``run(config:role:name:coordinatorEndpoint:port:overrides:logger:onReady:stopRequested:)``
    /// after the node has left the cluster.
    public struct Unrecoverable: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// How a node started outside `launch` differs from its config entry: a Kubernetes pod or a
    /// Slurm task runs an entry's settings under its own name and address.
    public struct Overrides: Sendable {
        /// The node's name at run time (a pod's name): the entry's name stays the key to its
        /// settings and CURVE key.
        public var instance: String?
        /// The endpoint other nodes dial (e.g. `tcp://POD_IP:7401`).
        public var advertise: String?
        /// Serve metrics on this port (each pod has its own address).
        public var metricsPort: Int?

        public init(instance: String? = nil, advertise: String? = nil, metricsPort: Int? = nil) {
            self.instance = instance
            self.advertise = advertise
            self.metricsPort = metricsPort
        }
    }

    /// Why a node cannot start.
    public struct StartError: Error, CustomStringConvertible {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    /// Runs the node `name` of `role`.
    /// - Parameters:
    ///   - coordinatorEndpoint: Where to find the coordinator (for the other roles); nil uses
    ///     the config's coordinator address, which then needs a fixed port.
    ///   - port: Listen on this port instead of the config's.
    ///   - onReady: Called with the node's endpoint once it listens.
    ///   - stopRequested: Returns when the process is asked to stop.
    /// - Returns: The process exit status.
    public static func run(
        config: ClusterConfig, role: ClusterConfig.Role, name entry: String, coordinatorEndpoint: String?, port: Int? = nil,
        overrides: Overrides = Overrides(), logger: Logger,
        onReady: @escaping @Sendable (String) -> Void, stopRequested: @escaping @Sendable () async -> Void
    ) async throws -> Int32 {
        guard var node = config.nodes.first(where: { $0.role == role && $0.address.name == entry }) else {
            let names = config.nodes.filter { $0.role == role }.map(\.address.name).joined(separator: ", ")
            throw StartError(description: "the config has no \(role.rawValue) named '\(entry)' (\(role.rawValue) names: \(names.isEmpty ? "none" : names))")
        }
        let name = overrides.instance ?? entry
        node.address.name = name
        if let port { node.address.port = port }
        if let advertise = overrides.advertise { node.address.advertise = advertise }
        // Before the actor system: its counters bind to the backend when they are made.
        let registry = config.monitor.metrics != nil ? NodeMetricsExport.bootstrap() : nil
        var systemSettings = systemConfiguration(config, node.address, role: role)
        do {
            systemSettings.security = try ClusterKeys.security(for: entry, config: config)
        } catch {
            throw StartError(description: "\(error)")
        }
        let system = try await ClusterSystem.start(configuration: systemSettings, logger: logger)
        try await registerRoles(on: system)
        var metricsServer: MetricsServer?
        if let registry, let settings = config.monitor.metrics {
            var settings = settings
            if let metricsPort = overrides.metricsPort { settings.port = metricsPort }
            metricsServer = try await NodeMetricsExport.serve(registry, settings: settings, config: config, role: role, entry: entry, name: name,
                                                              fixedPort: overrides.metricsPort != nil, logger: logger)
        }
        let stop = StopLatch()
        let stopWatcher = Task {
            await stopRequested()
            stop.fire()
        }
        defer { stopWatcher.cancel() }
        var status = ExitStatus.success
        var unrecoverable: String?
        let callers = CallerChecks(config: config, coordinatorEndpoint: try? coordinatorEndpoint ?? Self.coordinatorEndpoint(config))
        switch role {
        case .coordinator:
            try FileManager.default.createDirectory(at: config.output, withIntermediateDirectories: true)
            let coordinator = try CoordinatorActor(config: config, logger: logger, actorSystem: system)
            try system.receptionist.checkIn(coordinator, with: CoordinatorActor.key)
            onReady(system.identity.endpoint)
            let runTask = Task { await coordinator.whenLocal { await $0.run() } ?? .failed("the coordinator is not local") }
            let canceller = Task {
                await stop.wait()
                runTask.cancel()
            }
            let outcome = await runTask.value
            canceller.cancel()
            switch outcome {
            case .finished:
                await coordinator.whenLocal { await $0.releaseNodes() }
                // Samplers asking for work in the next moments learn the run is over.
                try? await Task.sleep(for: .milliseconds(300))
            case .interrupted: status = ExitStatus.interrupted
            case .failed: status = ExitStatus.failed
            }
            withExtendedLifetime(coordinator) {}
        case .sampler:
            guard let settings = config.samplers.first(where: { $0.address.name == entry }) else { break }
            onReady(system.identity.endpoint)
            guard await join(system, config: config, coordinatorEndpoint: coordinatorEndpoint, logger: logger, stop: stop) else {
                status = ExitStatus.interrupted
                break
            }
            let counters = SamplerCounters()
            let actor = SamplerActor(name: name, capacity: settings.capacity, counters: counters, actorSystem: system)
            try system.receptionist.checkIn(actor, with: SamplerActor.key)
            let backend: any ModelBackend
            do {
                let logs = config.output.appendingPathComponent("logs")
                try? FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
                backend = try makeBackend(settings.backend, serverLog: logs.appendingPathComponent("\(name).model-server.log").path,
                                          logger: logger)
                try await backend.start()
            } catch {
                logger.error("The sampler's model backend did not start", metadata: ["error": "\(error)"])
                if let backendError = error as? BackendError, backendError.permanent {
                    unrecoverable = "the sampler's model backend cannot start: \(backendError.message)"
                }
                status = ExitStatus.failed
                break
            }
            let worker = SamplerWorker(name: name, pool: settings.pool, capacity: settings.capacity, backend: backend,
                                       system: system, counters: counters, logger: logger)
            let work = Task { await worker.run() }
            let canceller = Task {
                await stop.wait()
                work.cancel()
            }
            let ending = await work.value
            canceller.cancel()
            await backend.shutdown()
            if case let .backendUnusable(reason) = ending {
                logger.critical("The sampler's model backend fails for good; the sampler stops", metadata: ["reason": "\(reason)"])
                unrecoverable = "the sampler's model backend fails for good: \(reason)"
            }
            if stop.fired { status = ExitStatus.interrupted }
            withExtendedLifetime(actor) {}
        case .verifier:
            guard let settings = config.verifiers.first(where: { $0.address.name == entry }) else { break }
            var judge: (any ModelBackend)?
            if let judgeSettings = settings.judgeBackend {
                do {
                    let logs = config.output.appendingPathComponent("logs")
                    try? FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
                    let backend = try makeBackend(judgeSettings, serverLog: logs.appendingPathComponent("\(name).judge-server.log").path, logger: logger)
                    try await backend.start()
                    judge = backend
                } catch {
                    logger.error("The verifier's judge backend did not start", metadata: ["error": "\(error)"])
                    if let backendError = error as? BackendError, backendError.permanent {
                        unrecoverable = "the verifier's judge backend cannot start: \(backendError.message)"
                    }
                    status = ExitStatus.failed
                    break
                }
            }
            onReady(system.identity.endpoint)
            let actor = VerifierActor(chain: settings.makeChain(judge: judge), stepJudge: judge.map { StepJudge(backend: $0) }, callers: callers, actorSystem: system,
                                      onFinish: { stop.fire(finished: true) })
            try system.receptionist.checkIn(actor, with: VerifierActor.key)
            if await join(system, config: config, coordinatorEndpoint: coordinatorEndpoint, logger: logger, stop: stop) {
                await stop.wait()
            }
            if !stop.finished { status = ExitStatus.interrupted }
            await judge?.shutdown()
            withExtendedLifetime(actor) {}
        case .trainer:
            let actor = try TrainerActor(
                folder: config.output, prompts: PromptBuilder(exemplars: config.prompt.exemplars), formats: config.trainer.formats,
                callers: callers, logger: logger, actorSystem: system, onFinish: { stop.fire(finished: true) })
            try system.receptionist.checkIn(actor, with: TrainerActor.key)
            onReady(system.identity.endpoint)
            if await join(system, config: config, coordinatorEndpoint: coordinatorEndpoint, logger: logger, stop: stop) {
                await stop.wait()
            }
            if !stop.finished { status = ExitStatus.interrupted }
            withExtendedLifetime(actor) {}
        }
        await system.shutdown()
        await metricsServer?.stop()
        if let unrecoverable, status != ExitStatus.interrupted { throw Unrecoverable(description: unrecoverable) }
        return status
    }

    /// Every role's methods are registered on every node: a caller needs the stable names too.
    public static func registerRoles(on system: ClusterSystem) async throws {
        try await system.register(CoordinatorActor.self)
        try await system.register(SamplerActor.self)
        try await system.register(VerifierActor.self)
        try await system.register(TrainerActor.self)
        try await system.register(DiagnosticsActor.self)
    }

    /// The actor system settings of one node.
    public static func systemConfiguration(_ config: ClusterConfig, _ address: ClusterConfig.NodeAddress, role: ClusterConfig.Role) -> ClusterSystemConfiguration {
        var system = ClusterSystemConfiguration()
        system.nodeName = address.name
        system.metricLabels = ["role": role.rawValue]
        system.bindEndpoint = address.bindEndpoint
        system.advertisedEndpoint = address.advertise
        system.heartbeatInterval = config.network.heartbeatInterval
        system.failureTimeout = config.network.failureTimeout
        system.callTimeout = config.network.callTimeout
        system.tick = min(.milliseconds(50), config.network.heartbeatInterval)
        // Verifiers compute, the trainer and the coordinator write and fsync (records, the
        // journal and its compaction) in their methods: all of that stays off the I/O thread,
        // which must keep reading heartbeats. A sampler's actor only answers status queries.
        system.callExecution = role == .sampler ? .eventLoop : .globalPool
        return system
    }

    /// The coordinator's endpoint as the config gives it.
    /// - Throws: ``StartError`` when the coordinator's port is 0 (chosen at start) and no
    ///   endpoint was passed.
    public static func coordinatorEndpoint(_ config: ClusterConfig) throws -> String {
        let address = config.coordinator.address
        if let advertise = address.advertise { return advertise }
        guard address.port != 0 else {
            throw StartError(description: "coordinator.port is 0 (a free port chosen at start): pass --coordinator ENDPOINT, or give the coordinator a fixed port")
        }
        let host = address.host == "0.0.0.0" ? "127.0.0.1" : address.host
        return "tcp://\(host):\(address.port)"
    }

    /// The backend a sampler's settings describe.
    /// - Parameter serverLog: Where a managed model server writes its own log.
    /// - Throws: ``BackendError`` when the backend cannot be made (an API key variable unset).
    public static func makeBackend(_ settings: ClusterConfig.BackendSettings, serverLog: String? = nil,
                                   logger: Logger) throws -> any ModelBackend
    {
        switch settings {
        case let .synthetic(configuration):
            return SyntheticBackend(configuration: configuration)
        case let .openAI(configuration):
            return try OpenAICompatibleBackend(configuration: configuration, logger: logger)
        case var .llamaServer(configuration):
            configuration.server.logFile = configuration.server.logFile ?? serverLog
            return LlamaServerBackend(configuration: configuration, logger: logger)
        }
    }

    /// Joins the coordinator, retrying until it answers or a stop is requested.
    private static func join(_ system: ClusterSystem, config: ClusterConfig, coordinatorEndpoint: String?, logger: Logger, stop: StopLatch) async -> Bool {
        let endpoint: String
        do {
            endpoint = try coordinatorEndpoint ?? Self.coordinatorEndpoint(config)
        } catch {
            logger.error("\(error)")
            return false
        }
        var attempt = 0
        while !stop.fired {
            do {
                _ = try await system.join(endpoint, timeout: .seconds(5))
                logger.info("Joined the coordinator", metadata: ["coordinator": "\(endpoint)"])
                return true
            } catch {
                attempt += 1
                logger.warning("The coordinator does not answer yet; still trying", metadata: ["coordinator": "\(endpoint)", "attempt": "\(attempt)"])
            }
        }
        return false
    }
}

/// A one-shot stop signal several tasks can wait for.
final class StopLatch: Sendable {
    private let state = Mutex<(fired: Bool, finished: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, false, []))

    var fired: Bool { state.withLock { $0.fired } }
    /// Whether the stop came from the run finishing (not from a signal).
    var finished: Bool { state.withLock { $0.finished } }

    func fire(finished: Bool = false) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.fired else { return [] }
            state.fired = true
            state.finished = finished
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state -> Bool in
                if state.fired { return true }
                state.waiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }
}
