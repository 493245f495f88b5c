import Wire

/// A sampler's request slots and the paths waiting to go to the coordinator.
///
/// ``SamplerWorker`` asks ``next()`` for what to send: it returns as soon as some lease is
/// finished or a slot is free, with every finished submission and the free slots as credits.
/// Leases granted meanwhile cannot exceed those credits, since slots only free up while a
/// request is in flight.
actor SamplerOutbox {
    private let capacity: Int
    private var inFlight = 0
    private var finished: [Selfimprove_V1_PathSubmission] = []
    private var waiter: CheckedContinuation<Void, Never>?

    init(capacity: Int) { self.capacity = capacity }

    /// Waits until a lease is finished or a slot is free; returns the finished submissions
    /// (handed over) and the free slots.
    func next() async -> (submissions: [Selfimprove_V1_PathSubmission], credits: Int) {
        while finished.isEmpty, inFlight >= capacity {
            await withCheckedContinuation { waiter = $0 }
        }
        defer { finished.removeAll(keepingCapacity: true) }
        return (finished, capacity - inFlight)
    }

    /// Submissions whose request failed wait for the next one, before those finished since.
    func putBack(_ submissions: [Selfimprove_V1_PathSubmission]) {
        finished.insert(contentsOf: submissions, at: 0)
    }

    /// `count` granted leases start.
    func take(_ count: Int) { inFlight += count }

    /// A lease is done: its submission (nil when it failed and was reported) waits for the
    /// next request, and its slot is free.
    func finish(_ submission: Selfimprove_V1_PathSubmission?) {
        inFlight -= 1
        if let submission { finished.append(submission) }
        waiter?.resume()
        waiter = nil
    }
}
