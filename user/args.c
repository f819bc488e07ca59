// SPDX-License-Identifier: MIT
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <regex.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "options.h"
#include "selhook.h"
#include "version.h"

static const char usage[] =
	"Usage: asyncprobe -p PID [-p PID...] [-d SECONDS] "
	"[--stall-threshold MS]\n"
	"                  [--syscall-threshold MS] [--churn-threshold N]\n"
	"                  [--cancel-threshold SECONDS] "
	"[--await-threshold SECONDS]\n"
	"                  [--format text|json|folded|speedscope|pprof|html]\n"
	"                  [-o OUT] [-v]\n"
	"       asyncprobe --listen [ADDR:]PORT (-p PID... | --match REGEX)\n"
	"       asyncprobe tasks -p PID [--format text|json]\n"
	"       asyncprobe top (-p PID... | --match REGEX)\n"
	"       asyncprobe record (-p PID... | --match REGEX) [-d SECONDS] -o "
	"FILE\n"
	"       asyncprobe report FILE [--format "
	"text|json|folded|speedscope|pprof|html]\n"
	"                  [-o OUT] [--partial]\n"
	"       asyncprobe check [-v]\n"
	"\n"
	"Find event-loop stalls, blocking syscalls and task churn in a\n"
	"running asyncio (CPython) process, and name the Python line that\n"
	"caused them. The target is neither stopped nor changed. Needs root,\n"
	"or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE.\n"
	"\n"
	"`asyncprobe top` is the first thing to run in an incident: each\n"
	"loop's utilization, lag and what runs now, tasks per second and the\n"
	"worst recent stalls and blocking syscalls, refreshed every second.\n"
	"\n"
	"`asyncprobe record` writes everything it finds into one compressed\n"
	"file; `asyncprobe report` turns that file into an incident summary\n"
	"(text), the JSON lines of a live run, folded stacks for flame graph\n"
	"tools, speedscope or pprof profiles, or a self-contained HTML flame\n"
	"graph, all weighted by stalled and blocked time. A live run writes\n"
	"these formats too, at its end (-f folded ...).\n"
	"\n"
	"`asyncprobe tasks` lists every asyncio task once: its name, state,\n"
	"coroutine stack and who awaits whom (Python 3.11+; needs only\n"
	"CAP_SYS_PTRACE).\n"
	"\n"
	"`asyncprobe check` loads and attaches every BPF program this kernel\n"
	"supports and says which features and fallbacks a run would use\n"
	"(exit 0), or that none can load here (exit 1).\n"
	"\n"
	"  -p, --pid PID               process to watch; repeat for more\n"
	"  -d, --duration SECONDS      stop after this long (default: until\n"
	"                              Ctrl-C, SIGTERM or the target exits)\n"
	"  -s, --stall-threshold MS    report loop iterations busier than "
	"this\n"
	"                              (default 100, asyncio's slow-callback\n"
	"                              duration)\n"
	"  -b, --syscall-threshold MS  report syscalls that block a loop "
	"thread\n"
	"                              longer than this (default 10)\n"
	"  -f, --format text|json      text lines, or one JSON object per "
	"line\n"
	"                              (default text); reports also\n"
	"                              folded, speedscope, pprof, html\n"
	"  -o, --output FILE           record: the file to write; report:\n"
	"                              where to write (default stdout)\n"
	"      --partial               report: a truncated or damaged record\n"
	"                              anyway, up to the damage\n"
	"  -c, --churn-threshold N     report task churn above N tasks\n"
	"                              created per second (default 1000)\n"
	"      --cancel-threshold SECONDS\n"
	"                              report tasks still running this long "
	"after\n"
	"                              cancel() (Python 3.11+; default 10)\n"
	"      --await-threshold SECONDS\n"
	"                              report tasks suspended in one await "
	"this\n"
	"                              long, e.g. 30 (off unless given: its\n"
	"                              hardware watchpoints slowed a service\n"
	"                              in a VM by ~6% while one was set)\n"
	"      --sample-period MS      sample busy loops every MS of their\n"
	"                              CPU time with a timer of their own\n"
	"                              (an interrupt per sample); default:\n"
	"                              on the kernel's timer tick, which\n"
	"                              interrupts a busy thread anyway\n"
	"                              (every 4 ms at HZ=250)\n"
	"      --selector-hook always  time every loop iteration with the\n"
	"                              selector hook attached all along;\n"
	"                              where it is a syscall tracepoint (no\n"
	"                              kprobes or fentry) that slows every\n"
	"                              syscall on the machine, so by default\n"
	"                              (windows) it is "
	"attached " SELHOOK_WINDOWS_TEXT "\n"
	"                              and the loops' own clocks time the\n"
	"                              stalls in between\n"
	"\n"
	"Prometheus exporter (a sidecar next to the service):\n"
	"  -l, --listen [ADDR:]PORT    serve /metrics on ADDR (default\n"
	"                              127.0.0.1: labels show code paths) "
	"until\n"
	"                              stopped; findings still go to "
	"stdout\n"
	"  -m, --match REGEX           watch every Python process whose "
	"command\n"
	"                              line matches (extended regex), new "
	"ones\n"
	"                              too; exited ones are dropped\n"
	"      --rescan SECONDS        how often --match looks (default 5)\n"
	"      --top-sites N           call sites named per metric and "
	"process;\n"
	"                              the rest are call_site=\"other\" "
	"(default 10)\n"
	"\n"
	"  -v, --verbose               say what is attached, and libbpf's "
	"logs\n"
	"  -V, --version               print the version and exit\n"
	"  -h, --help                  print this help and exit\n"
	"\n"
	"EXAMPLES:\n"
	"    asyncprobe -p 4711                  # watch until Ctrl-C\n"
	"    asyncprobe -p 4711 -d 30            # watch for 30 seconds\n"
	"    asyncprobe -p 4711 -s 50 -b 5       # stricter thresholds\n"
	"    asyncprobe -p 4711 -f json | jq .   # JSON lines for tools\n"
	"    asyncprobe tasks -p 4711            # what every task awaits\n"
	"    asyncprobe top -p 4711              # the live view\n"
	"    asyncprobe check                    # will it run on this "
	"kernel?\n"
	"    asyncprobe record -p 4711 -d 60 -o incident.aprec\n"
	"    asyncprobe report incident.aprec    # the summary, to read\n"
	"    asyncprobe report incident.aprec -f folded | flamegraph.pl > "
	"fg.svg\n"
	"    asyncprobe report incident.aprec -f speedscope -o "
	"incident.speedscope.json\n"
	"    asyncprobe report incident.aprec -f html -o incident.html\n"
	"    asyncprobe report incident.aprec -f pprof -o incident.pb.gz && "
	"go tool pprof -top incident.pb.gz\n"
	"    asyncprobe -l 9477 -m 'uvicorn|gunicorn'  # exporter for all "
	"workers\n"
	"    asyncprobe -l 0.0.0.0:9477 -p 4711  # exporter on every "
	"address\n"
	"    asyncprobe -p $(pgrep -f uvicorn | head -1)\n";

/* Commands that write the report formats (the live one at its end). */
static bool reports(const struct ap_options *o)
{
	return o->command == AP_CMD_REPORT || o->command == AP_CMD_WATCH;
}

/* --format's names, by enum ap_format; past JSON only where reports() */
static const char *const format_names[] = {
	[AP_FMT_TEXT] = "text",	    [AP_FMT_JSON] = "json",
	[AP_FMT_FOLDED] = "folded", [AP_FMT_SPEEDSCOPE] = "speedscope",
	[AP_FMT_PPROF] = "pprof",   [AP_FMT_HTML] = "html",
};

static int format_parse(const char *name, struct ap_options *o)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(*format_names);
	     i++) {
		if (strcmp(name, format_names[i]))
			continue;
		if (i > AP_FMT_JSON && !reports(o))
			return -1;
		o->format = (enum ap_format)i;
		return 0;
	}
	return -1;
}

/* [ADDR:]PORT with a port in range; the address is resolved later. */
static int listen_check(const char *s)
{
	const char *colon = strrchr(s, ':');
	const char *port = colon ? colon + 1 : s;
	char *end;
	long p;

	if (s[0] == '[' && (!colon || colon[-1] != ']'))
		return -1;
	errno = 0;
	p = strtol(port, &end, 10);
	return errno || end == port || *end || p < 0 || p > 65535 ? -1 : 0;
}

/* A positive finite number, or -1. */
static double parse_positive(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0)
		return -1;
	return v;
}

enum ap_parse_result args__parse(int argc, char **argv, struct ap_options *o,
				 FILE *out, FILE *err)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 'd' },
		{ "stall-threshold", required_argument, NULL, 's' },
		{ "syscall-threshold", required_argument, NULL, 'b' },
		{ "format", required_argument, NULL, 'f' },
		{ "sample-period", required_argument, NULL, 'S' },
		{ "churn-threshold", required_argument, NULL, 'c' },
		{ "cancel-threshold", required_argument, NULL, 'C' },
		{ "await-threshold", required_argument, NULL, 'A' },
		{ "hooks", required_argument, NULL, 'H' },
		{ "selector-hook", required_argument, NULL, 'Y' },
		{ "listen", required_argument, NULL, 'l' },
		{ "output", required_argument, NULL, 'o' },
		{ "partial", no_argument, NULL, 'P' },
		{ "match", required_argument, NULL, 'm' },
		{ "rescan", required_argument, NULL, 'R' },
		{ "top-sites", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long pid;
	int c;

	memset(o, 0, sizeof(*o));
	o->stall_ms = 100;
	o->syscall_ms = 10;
	o->sample_ms = 0; /* on the timer tick */
	o->churn_threshold = 1000;
	o->cancel_threshold_s = 10;
	o->await_threshold_s = 0; /* long_await: opt-in, see --help */
	o->rescan_s = 5;
	o->top_sites = 10;
	o->format = AP_FMT_TEXT;
	optind = 0; /* re-entrant for tests */
	opterr = 0;
	o->out = out;
	o->argc = argc;
	o->argv = argv;
	if (argc > 1) {
		static const struct {
			const char *name;
			enum ap_command cmd;
		} cmds[] = { { "tasks", AP_CMD_TASKS },
			     { "record", AP_CMD_RECORD },
			     { "report", AP_CMD_REPORT },
			     { "top", AP_CMD_TOP },
			     { "check", AP_CMD_CHECK } };

		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
			if (strcmp(argv[1], cmds[i].name))
				continue;
			o->command = cmds[i].cmd;
			argv++;
			argc--;
			break;
		}
	}

	while ((c = getopt_long(argc, argv, ":p:d:s:b:c:f:l:m:o:vVh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'p':
			errno = 0;
			pid = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || pid <= 0 ||
			    pid > 4194304) {
				fprintf(err,
					"asyncprobe: invalid PID '%s': give "
					"the "
					"process ID of a running Python "
					"process\n",
					optarg);
				return AP_PARSE_ERROR;
			}
			if (!o->pid)
				o->pid = (pid_t)pid;
			for (int i = 0; i < o->npids; i++)
				if (o->pids[i] == (pid_t)pid)
					pid = 0;
			if (!pid)
				break;
			if (o->npids >= AP_MAX_PIDS) {
				fprintf(err,
					"asyncprobe: too many -p (at most %d); "
					"use --match REGEX for many "
					"processes\n",
					AP_MAX_PIDS);
				return AP_PARSE_ERROR;
			}
			o->pids[o->npids++] = (pid_t)pid;
			break;
		case 'l':
			if (listen_check(optarg)) {
				fprintf(err,
					"asyncprobe: invalid listen address "
					"'%s': give PORT, ADDR:PORT or "
					"[IPV6]:PORT with a port from 0 (any "
					"free one) to 65535\n",
					optarg);
				return AP_PARSE_ERROR;
			}
			o->listen = optarg;
			break;
		case 'm': {
			regex_t re;
			int rc = regcomp(&re, optarg, REG_EXTENDED | REG_NOSUB);
			char why[128];

			if (rc || !optarg[0]) {
				if (rc) {
					regerror(rc, &re, why, sizeof(why));
				} else {
					regfree(&re);
					snprintf(why, sizeof(why), "empty");
				}
				fprintf(err,
					"asyncprobe: invalid --match regex "
					"'%s': %s\n",
					optarg, why);
				return AP_PARSE_ERROR;
			}
			regfree(&re);
			o->match = optarg;
			break;
		}
		case 'R':
			o->rescan_s = parse_positive(optarg);
			if (o->rescan_s < 0.1 || o->rescan_s > 3600) {
				fprintf(err,
					"asyncprobe: invalid rescan interval "
					"'%s': give seconds from 0.1 to 3600\n",
					optarg);
				return AP_PARSE_ERROR;
			}
			break;
		case 'T':
			errno = 0;
			pid = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || pid < 1 ||
			    pid > 1000) {
				fprintf(err,
					"asyncprobe: invalid --top-sites '%s': "
					"give a number from 1 to 1000\n",
					optarg);
				return AP_PARSE_ERROR;
			}
			o->top_sites = (int)pid;
			break;
		case 'd':
			o->duration_s = parse_positive(optarg);
			if (o->duration_s < 0) {
				fprintf(err,
					"asyncprobe: invalid duration '%s': "
					"give "
					"a positive number of seconds\n",
					optarg);
				return AP_PARSE_ERROR;
			}
			break;
		case 's':
		case 'b':
		case 'S': {
			double v = parse_positive(optarg);
			const char *what = c == 's'   ? "stall threshold"
					   : c == 'b' ? "syscall threshold"
						      : "sample period";

			if (v < 0 || v > 3600e3) {
				fprintf(err,
					"asyncprobe: invalid %s '%s': give a "
					"positive number of milliseconds\n",
					what, optarg);
				return AP_PARSE_ERROR;
			}
			*(c == 's'   ? &o->stall_ms
			  : c == 'b' ? &o->syscall_ms
				     : &o->sample_ms) = v;
			break;
		}
		case 'C':
		case 'A': {
			double v = parse_positive(optarg);

			if (v < 0.5 || v > 86400) {
				fprintf(err,
					"asyncprobe: invalid %s threshold "
					"'%s': give seconds from 0.5 to "
					"86400\n",
					c == 'C' ? "cancel" : "await", optarg);
				return AP_PARSE_ERROR;
			}
			*(c == 'C' ? &o->cancel_threshold_s
				   : &o->await_threshold_s) = v;
			break;
		}
		case 'c':
			o->churn_threshold = parse_positive(optarg);
			if (o->churn_threshold < 0) {
				fprintf(err,
					"asyncprobe: invalid churn threshold "
					"'%s': give a positive number of tasks "
					"per second\n",
					optarg);
				return AP_PARSE_ERROR;
			}
			break;
		case 'f':
			if (format_parse(optarg, o)) {
				fprintf(err,
					"asyncprobe: unknown format '%s': use "
					"%s\n",
					optarg,
					reports(o) ? "text, json, folded, "
						     "speedscope, pprof or html"
						   : "text or json");
				return AP_PARSE_ERROR;
			}
			break;
		case 'P':
			o->partial = 1;
			break;
		case 'o':
			if (!optarg[0]) {
				fprintf(err, "asyncprobe: -o needs a file "
					     "name\n");
				return AP_PARSE_ERROR;
			}
			o->output = optarg;
			break;
		case 'H':
			if (strcmp(optarg, "auto") &&
			    strcmp(optarg, "fentry") &&
			    strcmp(optarg, "kprobe") &&
			    strcmp(optarg, "tracepoint") &&
			    strcmp(optarg, "sys_enter")) {
				fprintf(err,
					"asyncprobe: unknown hooks '%s': use "
					"auto, fentry, kprobe, tracepoint or "
					"sys_enter\n",
					optarg);
				return AP_PARSE_ERROR;
			}
			o->hooks = strcmp(optarg, "auto") ? optarg : NULL;
			break;
		case 'Y':
			if (strcmp(optarg, "always") &&
			    strcmp(optarg, "windows")) {
				fprintf(err,
					"asyncprobe: unknown --selector-hook "
					"'%s': use always or windows\n",
					optarg);
				return AP_PARSE_ERROR;
			}
			o->selector_always = !strcmp(optarg, "always");
			break;
		case 'v':
			o->verbose++;
			break;
		case 'V':
			fprintf(out, "asyncprobe %s\n", AP_VERSION);
			return AP_PARSE_EXIT;
		case 'h':
			fputs(usage, out);
			return AP_PARSE_EXIT;
		case ':':
			fprintf(err,
				"asyncprobe: option '%s' needs a value; see "
				"asyncprobe --help\n",
				argv[optind - 1]);
			return AP_PARSE_ERROR;
		default:
			fprintf(err,
				"asyncprobe: unknown option '%s'; see "
				"asyncprobe --help\n",
				argv[optind - 1]);
			return AP_PARSE_ERROR;
		}
	}
	if (o->command == AP_CMD_CHECK) {
		if (optind < argc || o->npids || o->match || o->listen) {
			fprintf(err, "asyncprobe: `asyncprobe check` takes no "
				     "target: asyncprobe check [-v]\n");
			return AP_PARSE_ERROR;
		}
		return AP_PARSE_OK;
	}
	if (o->command == AP_CMD_REPORT && optind < argc && !o->record)
		o->record = argv[optind++];
	if (optind < argc) {
		fprintf(err,
			"asyncprobe: unexpected argument '%s'; see asyncprobe "
			"--help\n",
			argv[optind]);
		return AP_PARSE_ERROR;
	}
	if (o->command == AP_CMD_REPORT) {
		if (!o->record) {
			fprintf(err,
				"asyncprobe: `asyncprobe report` needs the "
				"record file: asyncprobe report FILE "
				"[--format FORMAT] [-o OUT]\n");
			return AP_PARSE_ERROR;
		}
		if (o->npids || o->listen || o->match) {
			fprintf(err, "asyncprobe: `asyncprobe report` reads a "
				     "file; it takes no -p, --listen or "
				     "--match\n");
			return AP_PARSE_ERROR;
		}
		return AP_PARSE_OK;
	}
	if (o->partial && o->command != AP_CMD_REPORT) {
		fprintf(err, "asyncprobe: --partial is for `asyncprobe "
			     "report`\n");
		return AP_PARSE_ERROR;
	}
	if (o->command == AP_CMD_TOP && o->listen) {
		fprintf(err, "asyncprobe: `asyncprobe top` is a view: no "
			     "--listen\n");
		return AP_PARSE_ERROR;
	}
	if (o->command == AP_CMD_RECORD && (!o->output || o->listen)) {
		fprintf(err, "asyncprobe: `asyncprobe record` needs -o FILE "
			     "(and no --listen)\n");
		return AP_PARSE_ERROR;
	}
	if (o->format > AP_FMT_JSON && (o->listen || o->match)) {
		fprintf(err,
			"asyncprobe: --format %s is written at the end of "
			"a run: not with --listen or --match\n",
			format_names[o->format]);
		return AP_PARSE_ERROR;
	}
	if (o->output && o->command != AP_CMD_RECORD &&
	    o->format <= AP_FMT_JSON) {
		fprintf(err, "asyncprobe: -o is for `asyncprobe record`, "
			     "`asyncprobe report` and the report formats\n");
		return AP_PARSE_ERROR;
	}
	if (o->command == AP_CMD_TASKS &&
	    (o->npids > 1 || o->listen || o->match)) {
		fprintf(err, "asyncprobe: `asyncprobe tasks` takes one -p PID "
			     "and no --listen or --match\n");
		return AP_PARSE_ERROR;
	}
	if (!o->npids && !o->match) {
		fprintf(err, "asyncprobe: -p PID is required%s\n%s",
			o->command == AP_CMD_TASKS ? "" : " (or --match REGEX)",
			usage);
		return AP_PARSE_ERROR;
	}
	return AP_PARSE_OK;
}
