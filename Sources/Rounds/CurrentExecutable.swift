import Foundation

/// The path of the running `selfimprove` executable, for spawning child nodes (the launcher's
/// nodes, the simulated trainer).
public func currentExecutablePath() -> String {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
}
