import ArgumentParser
import Backends

/// The llama-server a benchmark starts: the packaged model unless told otherwise.
struct ModelServerOptions: ParsableArguments {
    @Option(help: "The server's parallel slots (requests ask for at most this many paths).")
    var slots = 4

    @Option(help: "The server's CPU threads.")
    var threads = 2

    @Option(help: "The GGUF model (default: the packaged SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "The llama-cpp-server entry point (default: the one cluster/setup-model installs).")
    var server: String?

    func validate() throws {
        guard slots >= 1, threads >= 1 else { throw ValidationError("--slots and --threads must be at least 1") }
    }

    /// The server's settings, logging to `logFile`.
    func configuration(logFile: String) -> ManagedLlamaServer.Configuration {
        var configuration = ManagedLlamaServer.Configuration(command: server ?? PackagedModel.serverCommand, modelPath: model ?? PackagedModel.modelPath)
        configuration.slots = slots
        configuration.threads = threads
        configuration.contextPerSlot = 1024
        configuration.logFile = logFile
        return configuration
    }
}
