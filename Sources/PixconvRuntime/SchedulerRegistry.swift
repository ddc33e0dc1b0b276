import Foundation

/// How `set_timesteps` is called: with a step count, or with diffusers' custom `timesteps=` list.
public enum SchedulerSchedule: Sendable, Equatable {
    case steps(Int)
    case custom([Int])
}

/// One scheduler pixconv implements: its CLI name and aliases, the diffusers class it reproduces,
/// whether that class's `set_timesteps` takes custom `timesteps`, and how to build it.
///
/// Each scheduler file declares its kind (`extension SchedulerKind { static let … }`); adding one is
/// that file plus one line in `SchedulerRegistry.all`.
public struct SchedulerKind: Sendable, Hashable, CustomStringConvertible {
    /// The `--scheduler` name (and the reference-bundle `scheduler` value).
    public let name: String
    /// Other names `--scheduler` accepts (lower case).
    public let aliases: [String]
    /// diffusers `_class_name` of `scheduler_config.json`.
    public let className: String
    /// diffusers' `set_timesteps` has a `timesteps` argument (`retrieve_timesteps` accepts a list).
    public let acceptsCustomTimesteps: Bool
    /// A few words for `--help`.
    public let summary: String
    /// `XScheduler.from_config(config)` + `set_timesteps`.
    public let make: @Sendable (SchedulerConfig, SchedulerSchedule) throws -> any Scheduler

    public init(name: String, aliases: [String] = [], className: String, acceptsCustomTimesteps: Bool, summary: String,
                make: @escaping @Sendable (SchedulerConfig, SchedulerSchedule) throws -> any Scheduler) {
        self.name = name
        self.aliases = aliases
        self.className = className
        self.acceptsCustomTimesteps = acceptsCustomTimesteps
        self.summary = summary
        self.make = make
    }

    public var description: String { name }
    public static func == (a: SchedulerKind, b: SchedulerKind) -> Bool { a.name == b.name }
    public func hash(into h: inout Hasher) { h.combine(name) }
}

/// The one list of schedulers: `--scheduler` parsing and help, reference bundles, `makeScheduler`,
/// and the default scheduler of a model (the class its scheduler_config.json names).
public enum SchedulerRegistry {
    public static let all: [SchedulerKind] = [
        .dpmSolverMultistep,
        .ddim,
        .eulerDiscrete,
        .lcm,
        .ddpm,
    ]

    /// The CLI names, in registry order.
    public static var names: [String] { all.map(\.name) }

    /// "dpm++2m, ddim, euler, lcm or ddpm".
    public static var namesList: String {
        let n = names
        return n.count < 2 ? n.joined() : n.dropLast().joined(separator: ", ") + " or " + n[n.count - 1]
    }

    /// The kind whose name or alias is `name` (case-insensitive).
    public static func kind(named name: String) -> SchedulerKind? {
        let key = name.lowercased()
        return all.first { $0.name == key || $0.aliases.contains(key) }
    }

    /// The kind implementing the diffusers class `className`.
    public static func kind(className: String) -> SchedulerKind? {
        all.first { $0.className == className }
    }

    /// The model's default scheduler: the class its `scheduler_config.json` names (`_class_name`);
    /// DPM-Solver++ 2M when the config has no class name (a model without a scheduler folder: PixArt-α's
    /// own scheduler). An unknown class is an error naming it and `--scheduler`.
    public static func defaultKind(for config: SchedulerConfig) throws -> SchedulerKind {
        guard let className = config.className else { return .dpmSolverMultistep }
        guard let kind = kind(className: className) else { throw SchedulerError.unknownClassName(className) }
        return kind
    }
}
