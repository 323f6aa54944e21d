/// The admin API's OpenAPI 3 document, served at `/api/v5/openapi.json`. Kept by hand (not derived
/// from the route table, Router.swift), so AdminTests can check that both list the same routes.
enum OpenAPIDocument {
    static let text = #"""
{
 "openapi": "3.0.3",
 "info": {
  "title": "Turnpike admin API",
  "version": "0.1.0",
  "description": "EMQX v5 paths and field names where Turnpike has the data. Paged lists answer {\"data\": [...], \"meta\": {\"page\", \"limit\", \"count\", \"hasnext\"}}; errors answer {\"code\", \"message\"}."
 },
 "servers": [
  {
   "url": "/"
  }
 ],
 "security": [
  {
   "basicAuth": []
  },
  {
   "bearerAuth": []
  }
 ],
 "components": {
  "securitySchemes": {
   "basicAuth": {
    "type": "http",
    "scheme": "basic",
    "description": "api_key / api_secret from [admin]"
   },
   "bearerAuth": {
    "type": "http",
    "scheme": "bearer",
    "description": "a token from [admin]"
   }
  },
  "parameters": {
   "page": {
    "name": "page",
    "in": "query",
    "required": false,
    "description": "Page number, from 1 (default 1).",
    "schema": {
     "type": "integer",
     "minimum": 1
    }
   },
   "limit": {
    "name": "limit",
    "in": "query",
    "required": false,
    "description": "Items per page, 1 to 10000 (default 100).",
    "schema": {
     "type": "integer",
     "minimum": 1,
     "maximum": 10000
    }
   }
  },
  "schemas": {
   "Error": {
    "type": "object",
    "required": [
     "code",
     "message"
    ],
    "properties": {
     "code": {
      "type": "string"
     },
     "message": {
      "type": "string"
     }
    }
   },
   "Meta": {
    "type": "object",
    "properties": {
     "page": {
      "type": "integer"
     },
     "limit": {
      "type": "integer"
     },
     "count": {
      "type": "integer"
     },
     "hasnext": {
      "type": "boolean"
     }
    }
   },
   "Paged": {
    "type": "object",
    "required": [
     "data",
     "meta"
    ],
    "properties": {
     "data": {
      "type": "array",
      "items": {
       "type": "object"
      }
     },
     "meta": {
      "$ref": "#/components/schemas/Meta"
     }
    }
   },
   "Publish": {
    "type": "object",
    "required": [
     "topic"
    ],
    "properties": {
     "topic": {
      "type": "string"
     },
     "payload": {
      "type": "string"
     },
     "qos": {
      "type": "integer",
      "enum": [
       0,
       1,
       2
      ]
     },
     "retain": {
      "type": "boolean"
     },
     "payload_encoding": {
      "type": "string",
      "enum": [
       "plain",
       "base64"
      ]
     },
     "properties": {
      "type": "object"
     }
    }
   },
   "Ban": {
    "type": "object",
    "required": [
     "as",
     "who"
    ],
    "properties": {
     "as": {
      "type": "string",
      "enum": [
       "clientid",
       "username",
       "peerhost"
      ]
     },
     "who": {
      "type": "string"
     },
     "by": {
      "type": "string"
     },
     "reason": {
      "type": "string"
     },
     "until": {
      "description": "RFC 3339 or Unix seconds; absent: never",
      "oneOf": [
       {
        "type": "string"
       },
       {
        "type": "integer"
       }
      ]
     },
     "duration": {
      "type": "integer",
      "description": "seconds"
     }
    }
   },
   "RuleUpdate": {
    "type": "object",
    "required": [
     "enable"
    ],
    "properties": {
     "enable": {
      "type": "boolean"
     }
    }
   },
   "RuleTest": {
    "type": "object",
    "required": [
     "sql"
    ],
    "properties": {
     "sql": {
      "type": "string"
     },
     "context": {
      "type": "object",
      "properties": {
       "event_type": {
        "type": "string",
        "enum": [
         "message_publish"
        ]
       },
       "clientid": {
        "type": "string"
       },
       "username": {
        "type": "string"
       },
       "topic": {
        "type": "string"
       },
       "qos": {
        "type": "integer"
       },
       "payload": {
        "type": "string"
       },
       "peerhost": {
        "type": "string"
       }
      }
     }
    }
   }
  },
  "responses": {
   "Error": {
    "description": "An error",
    "content": {
     "application/json": {
      "schema": {
       "$ref": "#/components/schemas/Error"
      }
     }
    }
   }
  }
 },
 "paths": {
  "/": {
   "get": {
    "summary": "The dashboard: one HTML page (plain JavaScript) that asks for an API key and reads this API every 2 s",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "text/html": {
        "schema": {
         "type": "object"
        }
       }
      }
     }
    },
    "security": []
   }
  },
  "/metrics": {
   "get": {
    "summary": "Prometheus metrics (text format 0.0.4); needs credentials only with metrics_auth = true",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "text/plain": {
        "schema": {
         "type": "object"
        }
       }
      }
     }
    },
    "security": []
   }
  },
  "/api/v5/prometheus/stats": {
   "get": {
    "summary": "The same as /metrics, at EMQX's path",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "text/plain": {
        "schema": {
         "type": "object"
        }
       }
      }
     }
    },
    "security": []
   }
  },
  "/api/v5/openapi.json": {
   "get": {
    "summary": "This document",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     }
    },
    "security": []
   }
  },
  "/api/v5/status": {
   "get": {
    "summary": "Health: 200 when every loop answers within 1 s, else 503",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "text/plain": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "503": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "format",
      "in": "query",
      "required": false,
      "description": "json for a JSON answer",
      "schema": {
       "type": "string"
      }
     }
    ],
    "security": []
   }
  },
  "/api/v5/clients": {
   "get": {
    "summary": "Clients (sessions, connected or not)",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Paged"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "$ref": "#/components/parameters/page"
     },
     {
      "$ref": "#/components/parameters/limit"
     },
     {
      "name": "clientid",
      "in": "query",
      "required": false,
      "description": "exact client id",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "username",
      "in": "query",
      "required": false,
      "description": "exact user name",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "like_clientid",
      "in": "query",
      "required": false,
      "description": "substring of the client id",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "like_username",
      "in": "query",
      "required": false,
      "description": "substring of the user name",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "conn_state",
      "in": "query",
      "required": false,
      "description": "connected or disconnected",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "ip_address",
      "in": "query",
      "required": false,
      "description": "peer address",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "proto_ver",
      "in": "query",
      "required": false,
      "description": "3, 4 or 5",
      "schema": {
       "type": "integer"
      }
     },
     {
      "name": "order_by",
      "in": "query",
      "required": false,
      "description": "sort by recv_msg, send_msg, msg (received + sent), recv_oct, send_oct, mqueue_len, inflight_cnt, subscriptions_cnt or connected_at (largest first unless order=asc); default: by client id",
      "schema": {
       "type": "string",
       "enum": [
        "recv_msg",
        "send_msg",
        "msg",
        "recv_oct",
        "send_oct",
        "mqueue_len",
        "inflight_cnt",
        "subscriptions_cnt",
        "connected_at"
       ]
      }
     },
     {
      "name": "order",
      "in": "query",
      "required": false,
      "description": "asc or desc",
      "schema": {
       "type": "string",
       "enum": [
        "asc",
        "desc"
       ]
      }
     }
    ]
   }
  },
  "/api/v5/clients/{clientid}": {
   "get": {
    "summary": "One client",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "clientid",
      "in": "path",
      "required": true,
      "description": "The client id (percent-encode '/' and other reserved characters).",
      "schema": {
       "type": "string"
      }
     }
    ]
   },
   "delete": {
    "summary": "Kick: DISCONNECT 0x98 (v5) and the session is discarded",
    "responses": {
     "204": {
      "description": "Kicked"
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "clientid",
      "in": "path",
      "required": true,
      "description": "The client id (percent-encode '/' and other reserved characters).",
      "schema": {
       "type": "string"
      }
     }
    ]
   }
  },
  "/api/v5/clients/{clientid}/subscriptions": {
   "get": {
    "summary": "A client's subscriptions (a list; paged when page or limit is given)",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "array",
         "items": {
          "type": "object"
         }
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "clientid",
      "in": "path",
      "required": true,
      "description": "The client id (percent-encode '/' and other reserved characters).",
      "schema": {
       "type": "string"
      }
     },
     {
      "$ref": "#/components/parameters/page"
     },
     {
      "$ref": "#/components/parameters/limit"
     }
    ]
   }
  },
  "/api/v5/subscriptions": {
   "get": {
    "summary": "Every subscription",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Paged"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "$ref": "#/components/parameters/page"
     },
     {
      "$ref": "#/components/parameters/limit"
     },
     {
      "name": "clientid",
      "in": "query",
      "required": false,
      "description": "exact client id",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "topic",
      "in": "query",
      "required": false,
      "description": "exact filter",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "qos",
      "in": "query",
      "required": false,
      "description": "0, 1 or 2",
      "schema": {
       "type": "integer"
      }
     },
     {
      "name": "match_topic",
      "in": "query",
      "required": false,
      "description": "subscriptions whose filter matches this topic",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "share_group",
      "in": "query",
      "required": false,
      "description": "shared subscriptions of this group",
      "schema": {
       "type": "string"
      }
     }
    ]
   }
  },
  "/api/v5/topics": {
   "get": {
    "summary": "The routing table: each subscribed filter once",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Paged"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "$ref": "#/components/parameters/page"
     },
     {
      "$ref": "#/components/parameters/limit"
     },
     {
      "name": "topic",
      "in": "query",
      "required": false,
      "description": "exact filter",
      "schema": {
       "type": "string"
      }
     }
    ]
   }
  },
  "/api/v5/mqtt/retainer/messages": {
   "get": {
    "summary": "Retained messages (without payloads)",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Paged"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "$ref": "#/components/parameters/page"
     },
     {
      "$ref": "#/components/parameters/limit"
     },
     {
      "name": "topic",
      "in": "query",
      "required": false,
      "description": "a topic filter",
      "schema": {
       "type": "string"
      }
     }
    ]
   }
  },
  "/api/v5/mqtt/retainer/message/{topic}": {
   "get": {
    "summary": "One retained message, payload in base64",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "topic",
      "in": "path",
      "required": true,
      "description": "the topic, percent-encoded",
      "schema": {
       "type": "string"
      }
     }
    ]
   },
   "delete": {
    "summary": "Clear a retained message",
    "responses": {
     "204": {
      "description": "Cleared"
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "topic",
      "in": "path",
      "required": true,
      "description": "the topic, percent-encoded",
      "schema": {
       "type": "string"
      }
     }
    ]
   }
  },
  "/api/v5/publish": {
   "post": {
    "summary": "Publish a message as the broker",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "503": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/Publish"
       }
      }
     }
    }
   }
  },
  "/api/v5/rules": {
   "get": {
    "summary": "Rules with their SQL, actions and metrics",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Paged"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "$ref": "#/components/parameters/page"
     },
     {
      "$ref": "#/components/parameters/limit"
     },
     {
      "name": "enable",
      "in": "query",
      "required": false,
      "description": "true or false",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "like_id",
      "in": "query",
      "required": false,
      "description": "substring of the rule id",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "like_from",
      "in": "query",
      "required": false,
      "description": "substring of a FROM filter",
      "schema": {
       "type": "string"
      }
     }
    ]
   }
  },
  "/api/v5/rules/{id}": {
   "get": {
    "summary": "One rule",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "description": "the rule's name",
      "schema": {
       "type": "string"
      }
     }
    ]
   },
   "put": {
    "summary": "Enable or disable a rule",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "description": "the rule's name",
      "schema": {
       "type": "string"
      }
     }
    ],
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/RuleUpdate"
       }
      }
     }
    }
   }
  },
  "/api/v5/rule_test": {
   "post": {
    "summary": "Run SQL on a sample message; nothing is sent",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "412": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/RuleTest"
       }
      }
     }
    }
   }
  },
  "/api/v5/bridges": {
   "get": {
    "summary": "Bridges with status and metrics",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "array",
         "items": {
          "type": "object"
         }
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    }
   }
  },
  "/api/v5/bridges/{id}": {
   "get": {
    "summary": "One bridge",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "id",
      "in": "path",
      "required": true,
      "description": "type:name, e.g. webhook:crm",
      "schema": {
       "type": "string"
      }
     }
    ]
   }
  },
  "/api/v5/banned": {
   "get": {
    "summary": "Bans (configuration file and run time)",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "$ref": "#/components/schemas/Paged"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "$ref": "#/components/parameters/page"
     },
     {
      "$ref": "#/components/parameters/limit"
     }
    ]
   },
   "post": {
    "summary": "Ban a client id, user name or peer address; connected matches are kicked",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "409": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "requestBody": {
     "required": true,
     "content": {
      "application/json": {
       "schema": {
        "$ref": "#/components/schemas/Ban"
       }
      }
     }
    }
   },
   "delete": {
    "summary": "Remove every run-time ban",
    "responses": {
     "204": {
      "description": "Removed"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    }
   }
  },
  "/api/v5/banned/{as}/{who}": {
   "delete": {
    "summary": "Remove one run-time ban",
    "responses": {
     "204": {
      "description": "Removed"
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "404": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "as",
      "in": "path",
      "required": true,
      "description": "clientid, username or peerhost",
      "schema": {
       "type": "string"
      }
     },
     {
      "name": "who",
      "in": "path",
      "required": true,
      "description": "the banned value",
      "schema": {
       "type": "string"
      }
     }
    ]
   }
  },
  "/api/v5/stats": {
   "get": {
    "summary": "Counts (EMQX's names): connections, sessions, subscriptions, topics, retained",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "aggregate",
      "in": "query",
      "required": false,
      "description": "true: one object; else a list per node",
      "schema": {
       "type": "string"
      }
     }
    ]
   }
  },
  "/api/v5/metrics": {
   "get": {
    "summary": "Counters (EMQX's names): messages, bytes, packets, drops, authentication",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object"
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "aggregate",
      "in": "query",
      "required": false,
      "description": "true: one object; else a list per node",
      "schema": {
       "type": "string"
      }
     }
    ]
   }
  },
  "/api/v5/nodes": {
   "get": {
    "summary": "The cluster's nodes (EMQX's path): this node with its figures (and the cluster's, under cluster, when it is in one), then every other node heard from within the node timeout",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "array",
         "items": {
          "type": "object",
          "properties": {
           "node": {
            "type": "string"
           },
           "node_status": {
            "type": "string"
           },
           "self": {
            "type": "boolean"
           },
           "version": {
            "type": "string"
           },
           "uptime": {
            "type": "integer",
            "description": "ms"
           },
           "connections": {
            "type": "integer"
           },
           "live_connections": {
            "type": "integer"
           },
           "memory_used": {
            "type": "integer"
           },
           "max_fds": {
            "type": "integer"
           },
           "cluster": {
            "type": "object",
            "description": "$SYS/broker/cluster/… figures"
           }
          }
         }
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    }
   }
  },
  "/api/v5/dead_letters": {
   "get": {
    "summary": "Dead letters since start by $dlq topic ($dlq/rules/<rule>, $dlq/bridges/<type>.<name>), and the latest, newest first",
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object",
         "properties": {
          "total": {
           "type": "integer"
          },
          "topics": {
           "type": "array",
           "items": {
            "type": "object",
            "properties": {
             "topic": {
              "type": "string"
             },
             "count": {
              "type": "integer"
             }
            }
           }
          },
          "recent": {
           "type": "array",
           "items": {
            "type": "object",
            "properties": {
             "topic": {
              "type": "string"
             },
             "error": {
              "type": "string"
             },
             "rule": {
              "type": "string"
             },
             "origin_topic": {
              "type": "string"
             },
             "clientid": {
              "type": "string"
             },
             "payload_bytes": {
              "type": "integer"
             },
             "at": {
              "type": "string",
              "format": "date-time"
             }
            }
           }
          }
         }
        }
       }
      }
     },
     "400": {
      "$ref": "#/components/responses/Error"
     },
     "401": {
      "$ref": "#/components/responses/Error"
     }
    },
    "parameters": [
     {
      "name": "limit",
      "in": "query",
      "required": false,
      "description": "how many of the latest, 1 to 1000 (default 20)",
      "schema": {
       "type": "integer",
       "minimum": 1,
       "maximum": 1000
      }
     }
    ]
   }
  },
  "/api/v5/reload": {
   "post": {
    "summary": "The reload SIGHUP does (configuration with password, ACL and ban files, TLS, bridges, rules), one at a time with SIGHUP; a part whose file does not load keeps running as it was",
    "requestBody": {
     "required": false,
     "content": {
      "application/json": {
       "schema": {
        "type": "object",
        "description": "no options: empty or {}"
       }
      }
     }
    },
    "responses": {
     "200": {
      "description": "OK",
      "content": {
       "application/json": {
        "schema": {
         "type": "object",
         "properties": {
          "applied": {
           "type": "boolean",
           "description": "everything loaded"
          },
          "config": {
           "type": "object",
           "description": "status applied|failed, error (file:line:column), restart_needed (settings that change only at a restart)"
          },
          "tls": {
           "type": "object",
           "description": "status, reloaded and failed listeners"
          },
          "rules": {
           "type": "object",
           "description": "status applied|failed, error, active (the rules in force afterwards)"
          },
          "bridges": {
           "type": "object",
           "description": "status applied|unchanged|failed|skipped, error, started, replaced, stopped"
          },
          "code": {
           "type": "string",
           "description": "RELOAD_FAILED, on a 400"
          },
          "message": {
           "type": "string"
          }
         }
        }
       }
      }
     },
     "400": {
      "description": "a file did not load (the same body, with code RELOAD_FAILED and message), or a body that is not {}",
      "content": {
       "application/json": {
        "schema": {
         "type": "object",
         "properties": {
          "applied": {
           "type": "boolean",
           "description": "everything loaded"
          },
          "config": {
           "type": "object",
           "description": "status applied|failed, error (file:line:column), restart_needed (settings that change only at a restart)"
          },
          "tls": {
           "type": "object",
           "description": "status, reloaded and failed listeners"
          },
          "rules": {
           "type": "object",
           "description": "status applied|failed, error, active (the rules in force afterwards)"
          },
          "bridges": {
           "type": "object",
           "description": "status applied|unchanged|failed|skipped, error, started, replaced, stopped"
          },
          "code": {
           "type": "string",
           "description": "RELOAD_FAILED, on a 400"
          },
          "message": {
           "type": "string"
          }
         }
        }
       }
      }
     },
     "401": {
      "$ref": "#/components/responses/Error"
     },
     "503": {
      "$ref": "#/components/responses/Error"
     }
    }
   }
  }
 }
}
"""#
}
