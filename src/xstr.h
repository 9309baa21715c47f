/* xstr.h: MQ_XSTR(x), a macro's value as a string literal (header only):
 * a bound or a constant written once as a number, and said in words or
 * sent as text from that one number. */
#ifndef MQ_XSTR_H
#define MQ_XSTR_H

#define MQ_XSTR_(x) #x
#define MQ_XSTR(x) MQ_XSTR_(x)

#endif
