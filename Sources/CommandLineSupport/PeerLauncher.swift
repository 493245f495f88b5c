import Foundation
import ProcessSupervision
import Rounds

/// Starts `selfimprove peer` children and reads their ready line.
public enum PeerLauncher {
    public struct Launched {
        public let process: ChildProcess
        public let endpoint: String
        public let incarnation: String
    }

    public struct LaunchError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts a peer with extra arguments and waits (up to `timeout`) for its ready line.
    public static func launch(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> Launched {
        let process = try ChildProcess(executable: currentExecutablePath(), arguments: ["peer"] + arguments)
        guard let line = await process.nextLine(timeout: timeout),
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let endpoint = object["endpoint"] as? String
        else {
            await process.stop()
            throw LaunchError(description: "peer \(arguments) did not report its endpoint; stderr: \(process.standardErrorTail.suffix(2000))")
        }
        return Launched(process: process, endpoint: endpoint, incarnation: object["incarnation"] as? String ?? "")
    }
}
