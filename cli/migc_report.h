/* migc_report.h: `migc report DIR` (see migc_report.c). */
#ifndef MIGC_CLI_REPORT_H
#define MIGC_CLI_REPORT_H

/* Writes DIR/report.html and prints its path; 0, or 1 with a message on stderr. */
int report_run(const char *dir);

#endif
