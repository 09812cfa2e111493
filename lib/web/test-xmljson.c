// SPDX-License-Identifier: LGPL-2.1-or-later
/* XML to JSON: an EC2 answer as AWS documents it, entities, and what is refused. */

#include <string.h>

#include "macro.h"
#include "string-util.h"
#include "tests.h"
#include "web.h"
#include "xmljson.h"

static char *convert(const char *xml) {
        json_object *o = NULL;
        char *err = NULL, *s = NULL;
        if (xml_to_json(xml, strlen(xml), &o, &err) >= 0)
                s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        else
                s = err ? asprintf_safe("error: %s", err) : NULL;
        json_object_put(o);
        free(err);
        return s;
}

#define CHECK_XML(xml, want)                            \
        do {                                            \
                _cleanup_free_ char *_s = convert(xml); \
                CHECK_STR(_s, want);                    \
        } while (0)

int main(void) {
        CHECK_XML("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\n"
                  "  <requestId>8f7724cf-496f-496e-8fe3-example</requestId>\n"
                  "  <reservationSet>\n"
                  "    <item>\n"
                  "      <instancesSet>\n"
                  "        <item>\n"
                  "          <instanceId>i-1234567890abcdef0</instanceId>\n"
                  "          <instanceState><code>16</code><name>running</name></instanceState>\n"
                  "          <ipAddress>203.0.113.10</ipAddress>\n"
                  "          <tagSet><item><key>Name</key><value>inletsd-rdp</value></item>"
                  "<item><key>inletsd</key><value/></item></tagSet>\n"
                  "          <groupSet/>\n"
                  "        </item>\n"
                  "      </instancesSet>\n"
                  "    </item>\n"
                  "  </reservationSet>\n"
                  "</DescribeInstancesResponse>\n",
                  "{\"DescribeInstancesResponse\":{\"requestId\":\"8f7724cf-496f-496e-8fe3-example\","
                  "\"reservationSet\":[{\"instancesSet\":[{\"instanceId\":\"i-1234567890abcdef0\","
                  "\"instanceState\":{\"code\":\"16\",\"name\":\"running\"},\"ipAddress\":\"203.0.113.10\","
                  "\"tagSet\":[{\"key\":\"Name\",\"value\":\"inletsd-rdp\"},{\"key\":\"inletsd\",\"value\":\"\"}],"
                  "\"groupSet\":\"\"}]}]}}");
        CHECK_XML("<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized "
                  "&amp; &lt;that&gt; &quot;x&quot; &apos;y&apos; &#233;&#xe9;</Message></Error></Errors>"
                  "<RequestID>r</RequestID></Response>",
                  "{\"Response\":{\"Errors\":[{\"Code\":\"UnauthorizedOperation\",\"Message\":"
                  "\"You are not authorized & <that> \\\"x\\\" 'y' \xc3\xa9\xc3\xa9\"}],\"RequestID\":\"r\"}}");
        /* Route 53's lists: <Things><Thing>; a lone element of another name is an object */
        CHECK_XML("<R><ResourceRecordSets><ResourceRecordSet><Name>a.</Name><ResourceRecords><ResourceRecord>"
                  "<Value>1</Value></ResourceRecord><ResourceRecord><Value>2</Value></ResourceRecord></ResourceRecords>"
                  "</ResourceRecordSet></ResourceRecordSets><Config><PrivateZone>false</PrivateZone></Config></R>",
                  "{\"R\":{\"ResourceRecordSets\":[{\"Name\":\"a.\",\"ResourceRecords\":[{\"Value\":\"1\"},"
                  "{\"Value\":\"2\"}]}],\"Config\":{\"PrivateZone\":\"false\"}}}");
        CHECK_XML("<a><!-- c --><![CDATA[<b>&amp;]]><?pi x?></a>", "{\"a\":\"<b>&amp;\"}");
        CHECK_XML("<a x='>' y=\"<\"/>", "{\"a\":\"\"}"); /* quoted: skipped whole */
        CHECK_XML("<a <b/>", "error: XML answer, at byte 3: '<' in a start tag");
        /* refused */
        CHECK_XML("<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>", "error: XML answer, at byte 0: a DOCTYPE (not taken)");
        CHECK_XML("<a>&e;</a>", "error: XML answer, at byte 3: an unknown entity");
        CHECK_XML("<a>&#0;</a>", "error: XML answer, at byte 3: a character reference to no character");
        CHECK_XML("<a>&#xd800;</a>", "error: XML answer, at byte 3: a character reference to no character");
        CHECK_XML("<a>&#x110000;</a>", "error: XML answer, at byte 3: a character reference beyond Unicode");
        CHECK_XML("<a><b></a>", "error: XML answer, at byte 9: an end tag that does not match its start tag");
        CHECK_XML("<a></a><b/>", "error: XML answer, at byte 7: more after the root element");
        CHECK_XML("<a>", "error: XML answer, at byte 3: an element does not end");
        CHECK_XML("", "error: XML answer, at byte 0: no element");
        for (int depth = XML_MAX_DEPTH; depth <= XML_MAX_DEPTH + 1; depth++) {
                /* XML_MAX_DEPTH elements deep is taken, one more is not */
                char deep[(XML_MAX_DEPTH + 1) * 8 + 16] = "", *p = deep;
                for (int i = 0; i < depth; i++)
                        p += sprintf(p, "<a>");
                for (int i = 0; i < depth; i++)
                        p += sprintf(p, "</a>");
                _cleanup_free_ char *s = convert(deep);
                CHECK(s && (depth > XML_MAX_DEPTH) == !!strstr(s, "elements nested too deep"), "%d: %s", depth, s);
        }
        return tests_finish("xmljson");
}
