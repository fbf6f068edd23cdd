# cmake --install: the g4 binary to bin/, the license, README and product docs to share/doc/g4.
include(GNUInstallDirs)
install(TARGETS g4 RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
file(GLOB G4_DOCS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE ${PROJECT_SOURCE_DIR}/README.md ${G4_DOCS}
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
