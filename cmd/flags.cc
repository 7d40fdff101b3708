#include "cmd/flags.h"

#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/options_docs.h"
#include "common/options_yaml.h"
#include "common/version.h"

namespace devscope {
namespace {

constexpr const char* kOptionsFormats[] = {"flags-markdown", "config-markdown", "config-schema"};

// What CLI11 read for one flag, applied once parsing is done so that every value error has the
// same form ("FLAG: problem") and no callback throws.
struct GivenFlag {
  Option* option;
  std::string text;  // the value; for a switch, empty
  bool on = true;    // a switch: the flag (true) or its --no- form (false)
};

// The problem as one printable line: messages quote what the file or flag held (yaml-cpp quotes
// the offending character raw), and a newline or control byte there would split or garble the
// line (found by test/fuzz's config target).
std::string OneLine(absl::string_view problem) {
  std::string out;
  for (const char c : problem) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(byte, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

const char* TypeName(OptionType type) {
  switch (type) {
    case OptionType::kDuration:
      return "DURATION";
    case OptionType::kByteSize:
      return "SIZE";
    case OptionType::kNumber:
      return "NUMBER";
    case OptionType::kChoice:
      return "CHOICE";
    default:
      return "TEXT";
  }
}

// Adds every flag of `options` to `app`, recording what is given in `given`.
void AddFlags(const OptionSet& options, CLI::App& app, std::vector<GivenFlag>& given) {
  for (const auto& owned : options.options()) {
    Option* option = owned.get();
    if (option->flag.empty()) continue;
    CLI::Option* flag = nullptr;
    if (!option->negated_flag.empty()) {
      flag = app.add_flag_function(
          absl::StrCat(option->flag, ",!", option->negated_flag),
          [option, &given](int64_t count) {
            given.push_back({option, "", count > 0});
          },
          option->value.type == OptionType::kSwitch
              ? absl::StrCat(option->help, " (default: ", option->default_text, ")")
              : option->help);
    } else {
      flag = app.add_option_function<std::string>(
          option->flag,
          [option, &given](const std::string& text) {
            given.push_back({option, text});
          },
          option->help);
      flag->type_name(TypeName(option->value.type));
      if (!option->default_text.empty()) flag->default_str(option->default_text);
    }
    flag->group(option->group.empty() ? "General" : option->group);
  }
}

// Step "read the command line": the values CLI11 collected, in the order given.
absl::Status ApplyFlags(const std::vector<GivenFlag>& given) {
  for (const GivenFlag& flag : given) {
    Option& option = *flag.option;
    if (option.value.set) {
      option.value.set(flag.on);
    } else if (absl::Status status = option.value.parse(flag.text); !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(option.flag, ": ", status.message()));
    }
    option.source = OptionSource::kFlag;
  }
  return absl::OkStatus();
}

// The CLI11 application: every declared flag, --version and the subcommands.
struct Cli {
  Cli(const OptionSet& options, std::string& options_format) {
    app.fallthrough();
    app.get_formatter()->column_width(44);
    app.add_flag("--version", version, "Print the version and exit");
    AddFlags(options, app, given);
    demo = app.add_subcommand(
        "demo", "Run a simulated node: a kubelet stand-in, devices, pods and devscope on top");
    pod = app.add_subcommand("pod", "Print one pod's resources (Get, falling back to List)");
    pod->add_option("NAMESPACE/NAME", pod_text, "The pod")->required();
    describe = app.add_subcommand("options", "Print the options' docs tables or schema");
    describe->group("");  // a maintainer's command: not in --help
    options_format = kOptionsFormats[0];
    describe
        ->add_option("--format", options_format, "flags-markdown, config-markdown, config-schema")
        ->check(CLI::IsMember(
            std::vector<std::string>(std::begin(kOptionsFormats), std::end(kOptionsFormats))));
    app.require_subcommand(0, 1);
  }

  CommandLine::Command Command() const {
    if (demo->parsed()) return CommandLine::Command::kDemo;
    if (pod->parsed()) return CommandLine::Command::kPod;
    if (describe->parsed()) return CommandLine::Command::kOptions;
    return CommandLine::Command::kServe;
  }

  CLI::App app{
      "devscope: which pod holds which device, and how that device is doing.\n"
      "Polls the kubelet's pod-resources API, collects device telemetry, serves Prometheus\n"
      "metrics and a kubelet device plugin.",
      "devscope"};
  bool version = false;
  std::vector<GivenFlag> given;
  std::string pod_text;
  CLI::App* demo = nullptr;
  CLI::App* pod = nullptr;
  CLI::App* describe = nullptr;
};

}  // namespace

void DeclareOptions(OptionDeclarer& d, CommandOptions& o) {
  DeclareOptions(d, o.agent);
  d.Flag("config.file", o.config_file,
         "YAML for what flags cannot say well: plugin settings, health thresholds, collector "
         "options")
      .Group("General")
      .DocNote("its keys: [the config file](#the-config-file)");
  DeclareOptions(d, o.log);
}

ParseResult ParseCommandLine(int argc, const char* const* argv, std::ostream& out,
                             std::ostream& err) {
  ParseResult result;
  CommandLine& cl = result.command_line;
  OptionSet options;
  OptionDeclarer declarer(options);
  DeclareOptions(declarer, cl.options);
  if (!options.status().ok()) {
    err << "devscope: internal error: " << options.status().message() << "\n";
    result.exit_code = 1;
    return result;
  }
  Cli cli(options, cl.options_format);
  try {
    cli.app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out << cli.app.help();
    result.exit_code = 0;
    return result;
  } catch (const CLI::CallForAllHelp&) {
    out << cli.app.help("", CLI::AppFormatMode::All);
    result.exit_code = 0;
    return result;
  } catch (const CLI::ParseError& e) {
    err << "devscope: " << OneLine(e.what()) << " (see devscope --help)\n";
    result.exit_code = 2;
    return result;
  }
  if (cli.version) {
    out << VersionString() << "\n";
    result.exit_code = 0;
    return result;
  }
  cl.command = cli.Command();

  const std::vector<std::pair<const char*, std::function<absl::Status()>>> steps = {
      {"read the command line",
       [&]() -> absl::Status {
         if (absl::Status status = ApplyFlags(cli.given); !status.ok()) return status;
         if (cl.command != CommandLine::Command::kPod) return absl::OkStatus();
         absl::StatusOr<PodRef> ref = ParsePodRef(cli.pod_text);
         if (!ref.ok()) return ref.status();
         cl.pod = *std::move(ref);
         return absl::OkStatus();
       }},
      {"read --config.file",
       [&] {
         if (cl.options.config_file.empty()) return absl::OkStatus();
         return LoadOptionsFile(cl.options.config_file, options);
       }},
      {"check the options", [&] { return options.RunChecks(); }},
  };
  for (const auto& [name, step] : steps) {
    absl::Status status;
    // yaml-cpp and the standard library throw; nothing escapes start-up as an exception.
    try {
      status = step();
    } catch (const std::exception& e) {
      status = absl::InvalidArgumentError(absl::StrCat(name, ": ", e.what()));
    }
    if (!status.ok()) {
      err << "devscope: " << OneLine(status.message()) << "\n";
      result.exit_code = 2;
      return result;
    }
  }
  return result;
}

absl::StatusOr<std::string> OptionsDocument(absl::string_view format) {
  CommandOptions defaults;
  OptionSet options;
  OptionDeclarer declarer(options);
  DeclareOptions(declarer, defaults);
  if (!options.status().ok()) return options.status();
  if (format == "flags-markdown") return FlagTableMarkdown(options);
  if (format == "config-markdown") return KeyTableMarkdown(options);
  if (format == "config-schema") return ConfigJsonSchema(options);
  return absl::InvalidArgumentError(absl::StrCat("no options format \"", format, "\""));
}

}  // namespace devscope
