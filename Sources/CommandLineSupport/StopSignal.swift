import Foundation
import Synchronization
import ProcessSupervision

/// Waits for the process to be asked to stop: SIGINT, SIGTERM, or (optionally) standard input
/// reaching end of file, which is how a parent that dies takes its children with it.
public enum StopSignal {
    /// Suspends until a stop is requested.
    /// - Parameter watchStandardInput: Also stop when standard input closes.
    public static func wait(watchStandardInput: Bool) async {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        let sources = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield() }
            source.resume()
            return source
        }
        if watchStandardInput {
            let thread = Thread {
                while true {
                    let data = FileHandle.standardInput.availableData
                    if data.isEmpty { break }
                }
                continuation.yield()
            }
            thread.start()
        }
        var iterator = stream.makeAsyncIterator()
        _ = await iterator.next()
        for source in sources { source.cancel() }
    }
}

/// Writes one JSON object as a line on standard output and flushes it (the handshake line a
/// parent process reads from a child node).
public func printJSONLine(_ object: [String: Any]) {
    guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
    data.append(0x0A)
    SafeFileWriter.standardOutput.write(data)
}
