import Foundation
import ProcessSupervision
import Rounds

/// Starts `selfimprove peer` children and reads their ready line.
enum PeerLauncher {
    struct Launched {
        let process: ChildProcess
        let endpoint: String
        let incarnation: String
    }

    struct LaunchError: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts a peer with extra arguments and waits (up to `timeout`) for its ready line.
    static func launch(_ arguments: [String], timeout: Duration = .seconds(30)) async throws -> Launched {
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
