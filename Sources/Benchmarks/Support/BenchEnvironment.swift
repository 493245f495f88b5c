import Foundation
import Logging

/// What every benchmark states about where it ran, and where it keeps its evidence.
enum BenchEnvironment {
    /// "release" or "debug": benchmark figures are only comparable between release builds.
    static var buildMode: String {
        #if DEBUG
            "debug"
        #else
            "release"
        #endif
    }

    /// The machine and build, for the `environment` entry of a benchmark's JSON.
    static var description: [String: Any] {
        ["build": buildMode, "cores": ProcessInfo.processInfo.activeProcessorCount]
    }

    /// Says on stderr that figures from a debug build are not the project's figures.
    static func warnIfDebug(_ logger: Logger) {
        if buildMode == "debug" {
            logger.warning("This is a debug build: its figures are not comparable with the documented ones (build a release one: cluster/setup release)")
        }
    }

    /// The folder a benchmark works in: `keep` when given (kept, so a figure can be checked),
    /// otherwise a temporary one that ``discard(_:keep:)`` removes.
    static func folder(keep: String?) throws -> URL {
        let folder = keep.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("selfimprove-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Removes a temporary benchmark folder (a kept one stays).
    static func discard(_ folder: URL, keep: String?) {
        if keep == nil { try? FileManager.default.removeItem(at: folder) }
    }

    /// Writes a benchmark's result into its folder as `bench.json`.
    static func record(_ result: [String: Any], in folder: URL) throws {
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        try data.write(to: folder.appendingPathComponent("bench.json"), options: .atomic)
    }
}

/// CPU time spent by processes, to see which one a benchmark's time goes to.
enum ProcessCPU {
    /// User plus system CPU seconds of a running process (nil once it is gone).
    static func seconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// User plus system CPU seconds of every running process in a process group (a managed
    /// llama-server is a guard shell, its entry point and the server).
    static func seconds(processGroup: Int32) -> Double {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        var total = 0.0
        for entry in entries {
            guard let pid = Int32(entry), let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = text.lastIndex(of: ")") else { continue }
            let fields = text[text.index(after: close)...].split(separator: " ")
            if fields.count > 2, Int32(fields[2]) == processGroup, let cpu = seconds(pid: pid) { total += cpu }
        }
        return total
    }

    /// CPU seconds the whole machine spent busy (every core, every process: not idle, not
    /// waiting for I/O) and those the hypervisor gave to other machines (steal), from
    /// `/proc/stat`. Busy time no known process took is other load.
    static func machine() -> (busy: Double, steal: Double) {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return (0, 0) }
        let ticks = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard ticks.count >= 8 else { return (0, 0) }
        // user nice system idle iowait irq softirq steal
        let perSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ((ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / perSecond, ticks[7] / perSecond)
    }

    /// User plus system CPU seconds of this process.
    static func ownSeconds() -> Double { usage(Int32(RUSAGE_SELF.rawValue)) }

    /// User plus system CPU seconds of this process's children that have exited and been reaped.
    static func reapedChildrenSeconds() -> Double { usage(Int32(RUSAGE_CHILDREN.rawValue)) }

    private static func usage(_ who: Int32) -> Double {
        var usage = rusage()
        getrusage(who, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
