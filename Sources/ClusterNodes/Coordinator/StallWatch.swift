/// Tells, from the counts a coordinator sees each tick, when its run has made no progress for
/// too long and when the trainer (not the samplers) is what the run waits for. Rules without a
/// clock of their own: every call passes the current instant.
struct StallWatch {
    /// When paths or stored questions last moved, and their counts then.
    private var lastAdvance: (time: ContinuousClock.Instant, paths: Int, done: Int)
    /// Since when the trainer window has been full (no new question is admitted), and whether
    /// that was reported.
    private var windowFull: (since: ContinuousClock.Instant, reported: Bool)?

    init(now: ContinuousClock.Instant) {
        lastAdvance = (now, 0, 0)
    }

    /// Whether neither paths received nor questions stored moved for longer than `timeout`.
    mutating func stalled(paths: Int, done: Int, now: ContinuousClock.Instant, timeout: Duration) -> Bool {
        if paths != lastAdvance.paths || done != lastAdvance.done {
            lastAdvance = (now, paths, done)
            return false
        }
        return now - lastAdvance.time > timeout
    }

    /// What to report about the trainer window.
    enum WindowReport: Equatable {
        /// Full for `waited` (at least the patience): sampling waits for the trainer.
        case backPressure(waited: Duration)
        /// No longer full after a reported episode.
        case caughtUp
    }

    /// Follows the trainer window; reports each episode of a window that stays full for
    /// `patience` once, and its end.
    mutating func trainerWindow(full: Bool, now: ContinuousClock.Instant, patience: Duration) -> WindowReport? {
        guard full else {
            defer { windowFull = nil }
            return windowFull?.reported == true ? .caughtUp : nil
        }
        guard let episode = windowFull else {
            windowFull = (now, false)
            return nil
        }
        guard !episode.reported, now - episode.since >= patience else { return nil }
        windowFull?.reported = true
        return .backPressure(waited: now - episode.since)
    }
}
